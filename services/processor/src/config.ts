/** The processor's config: that of every handler service, named `processor`, HTTP on 8082 by default. */
import type { LoadOptions } from '@mesh/config';
import { handlerServiceSchema, loadHandlerServiceConfig, type HandlerServiceConfig } from '@mesh/runtime';

export type ProcessorConfig = HandlerServiceConfig;

export const schema = handlerServiceSchema('processor', 8082);

export function loadProcessorConfig(options?: LoadOptions): ProcessorConfig {
  return loadHandlerServiceConfig('processor', 8082, options);
}
