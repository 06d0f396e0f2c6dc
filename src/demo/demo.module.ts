import { DynamicModule, Module } from '@nestjs/common';
import { DemoController } from './demo.controller';

@Module({})
export class DemoModule {
  static register(enabled: boolean): DynamicModule {
    return { module: DemoModule, controllers: enabled ? [DemoController] : [] };
  }
}
