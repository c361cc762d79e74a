export { ResourcePushEvent, RESOURCE_PUSH, type ResourcePushEventInit } from './resource-push-event.js';
