import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PLAYER_SW_PATH } from '../media/index.js';
import { CACHE_NONE, type OriginResponses } from './responses.js';
import type { Request, Response } from './route.js';

export interface PlayerFile {
  file: string;
  type: string;
  /** Response headers of this file beyond its type and caching. */
  headers?: Readonly<Record<string, string>>;
}

const PAGE: PlayerFile = { file: 'index.html', type: 'text/html; charset=utf-8' };

/** Static files of the player pages: an allow-list, never a path taken from the request. */
const PLAYER_FILES: Record<string, PlayerFile> = {
  '/': PAGE,
  '/index.html': PAGE,
  // The same page with its mode forced by the path (src/web/player/page.ts).
  '/warp/': PAGE,
  '/multicast/': PAGE,
  '/player.css': { file: 'player.css', type: 'text/css; charset=utf-8' },
  // The LL-HLS page: hls.js on the multivariant playlist (src/web/hls).
  '/hls/': { file: 'hls.html', type: 'text/html; charset=utf-8' },
  '/hls/page.js': { file: 'hls-page.js', type: 'text/javascript; charset=utf-8' },
  '/hls/page.js.map': { file: 'hls-page.js.map', type: 'application/json; charset=utf-8' },
  // The multicast Service Worker (the old scope's path, and the one that may control the whole origin).
  '/multicast/sw.js': { file: 'sw.js', type: 'text/javascript; charset=utf-8' },
  // The same Service Worker for a page that registers it for the whole origin (scope `/`): it acts only on
  // requests marked for multicast, so it may control every page.
  [PLAYER_SW_PATH]: {
    file: 'sw.js',
    type: 'text/javascript; charset=utf-8',
    headers: { 'Service-Worker-Allowed': '/' },
  },
};

/** The player bundle's files (src/web/player, split by esbuild): names esbuild writes, nothing else. */
const PLAYER_BUNDLE = /^\/player\/((?:pushcast-player|page|chunk-[A-Z0-9]{8})\.js(\.map)?)$/;

/** The player file served at `path`, if any. */
export function playerFile(path: string): PlayerFile | undefined {
  if (Object.hasOwn(PLAYER_FILES, path)) return PLAYER_FILES[path];
  const bundle = PLAYER_BUNDLE.exec(path);
  if (bundle)
    return {
      file: `player/${bundle[1]}`,
      type: bundle[2] ? 'application/json; charset=utf-8' : 'text/javascript; charset=utf-8',
    };
  return undefined;
}

/** Serves a player file from `webRoot` (the built pages), or 404 when the pages are not built. */
export async function servePlayerFile(
  responses: OriginResponses,
  webRoot: string,
  req: Request,
  res: Response,
  f: PlayerFile,
): Promise<void> {
  try {
    const bytes = await readFile(join(webRoot, f.file));
    responses.send(res, 200, f.type, bytes, { 'Cache-Control': 'no-cache', ...f.headers }, req, 'page');
  } catch {
    responses.send(
      res,
      404,
      'text/plain',
      'player page not built (npm run build)\n',
      { 'Cache-Control': CACHE_NONE },
      req,
      'page',
    );
  }
}
