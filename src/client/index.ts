export { Http2PushClient, type Http2PushClientOptions, type Http2Reply } from './http2-push-client.js';
export { createNodeFetch, type NodeFetch, type NodeFetchOptions } from './node-fetch.js';
export {
  DashLiveFollower,
  type DashLiveFollowerOptions,
  type DashRepresentation,
  type FollowedResource,
} from './dash-live-follower.js';
