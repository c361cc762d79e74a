/**
 * The Server Push API proposed in BBC R&D WHP 336 §4.4 (Figure 6):
 *
 *   interface ResourcePushEvent : Event {
 *     readonly attribute Request request;
 *     readonly attribute Promise<Response> response;
 *   };
 *
 * One event per PUSH_PROMISE. `request` is the promised request (its pseudo-headers and headers);
 * `response` resolves once every HEADERS and DATA frame of the pushed response has arrived, and rejects if
 * the push is reset or its connection lost. Every push source of pushcast (HTTP/2 push, multicast
 * HTTP/QUIC reassembly) raises this same event, so applications handle pushed resources one way.
 *
 * Isomorphic: Event, Request, Response and Promise exist in browsers, workers and Node ≥ 18.
 */
/** The options of `new Event()`, as every platform names them (no DOM library needed). */
type EventInit = NonNullable<ConstructorParameters<typeof Event>[1]>;

export interface ResourcePushEventInit extends EventInit {
  request: Request;
  response: Promise<Response>;
}

export const RESOURCE_PUSH = 'resourcepush';

export class ResourcePushEvent extends Event {
  readonly request: Request;
  readonly response: Promise<Response>;

  constructor(type: string, init: ResourcePushEventInit) {
    super(type, init);
    this.request = init.request;
    this.response = init.response;
    // A push that nobody awaits must not become an unhandled rejection; listeners still see the rejection.
    this.response.catch(() => {});
  }
}
