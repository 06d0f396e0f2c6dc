import { Global, Module } from '@nestjs/common';
import { LoadMonitor } from './load-monitor';

@Global()
@Module({ providers: [LoadMonitor], exports: [LoadMonitor] })
export class LoadModule {}
