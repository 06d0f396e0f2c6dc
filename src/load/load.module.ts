import { Global, Module } from '@nestjs/common';
import { LoadMonitor } from './load-monitor';
import { RestAdmission } from './rest-admission';

@Global()
@Module({ providers: [LoadMonitor, RestAdmission], exports: [LoadMonitor, RestAdmission] })
export class LoadModule {}
