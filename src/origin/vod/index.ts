/**
 * On-demand items beside the live stream: every media file of a folder, packaged on first use into CMAF
 * track files, served by byte ranges, the first part of each pushed with the item's metadata over HTTP/2.
 */
export { VodLibrary, VodError, type VodLibraryOptions, type VodPackage } from './library.js';
export {
  vodRoute,
  firstRangeEnd,
  type VodRouteOptions,
  type VodMetadata,
  type VodTrackMetadata,
} from './route.js';
export { slugify, itemIds, type VodItem } from './catalog.js';
export type { PackageIndex, PackagedTrack, IndexedSegment, VodTrackId } from './packaging.js';
