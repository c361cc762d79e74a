/**
 * The pushcast player, for pages and bundlers: `import { PushcastPlayer } from 'pushcast/player'`, or the
 * `<pushcast-player>` element, defined when this module loads.
 */
import { definePushcastPlayer } from './element.js';

export { DELIVERY_MODES, type DeliveryDescription, type DeliveryMode } from '../../media/live/delivery.js';
export { PushcastPlayerElement, definePushcastPlayer } from './element.js';
export type { Rendition, WarpSessionOptions } from './mode-playback.js';
export { PlayerError, type PlayerErrorCategory } from './player-error.js';
export { PlayerEvents, PushcastPlayer, type PushcastPlayerOptions } from './pushcast-player.js';
export type { BytesByRoute, ModeAttempt, PlayerMode, PlayerMove, PlayerStats } from './stats.js';

if (typeof customElements !== 'undefined') definePushcastPlayer();
