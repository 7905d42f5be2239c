// world hookhost:plugin/handler@0.1.2
export type Delivery = import('./interfaces/hookhost-plugin-types.js').Delivery;
export type Response = import('./interfaces/hookhost-plugin-types.js').Response;
export type HandlerError = import('./interfaces/hookhost-plugin-types.js').HandlerError;
export type * as HookhostPluginConfig012 from './interfaces/hookhost-plugin-config.js'; // import hookhost:plugin/config@0.1.2
export type * as HookhostPluginKv012 from './interfaces/hookhost-plugin-kv.js'; // import hookhost:plugin/kv@0.1.2
export type * as HookhostPluginLog012 from './interfaces/hookhost-plugin-log.js'; // import hookhost:plugin/log@0.1.2
export type * as HookhostPluginQueue012 from './interfaces/hookhost-plugin-queue.js'; // import hookhost:plugin/queue@0.1.2
export type * as HookhostPluginTypes012 from './interfaces/hookhost-plugin-types.js'; // import hookhost:plugin/types@0.1.2
/**
* Handles one delivery. Called once per delivery (and per retry), each time
* in a fresh instance unless the manifest opts into reuse.
*/
export function handle(delivery: Delivery): Response;
export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
