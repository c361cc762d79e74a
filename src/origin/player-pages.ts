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

/** Static files of the player pages: an allow-list, never a path taken from the request. */
const PLAYER_FILES: Record<string, PlayerFile> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/player.js': { file: 'player.js', type: 'text/javascript; charset=utf-8' },
  '/player.css': { file: 'player.css', type: 'text/css; charset=utf-8' },
  // The multicast player: the same page under /multicast/, controlled by the Service Worker beside it.
  '/multicast/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/multicast/sw.js': { file: 'sw.js', type: 'text/javascript; charset=utf-8' },
  // The same Service Worker for a page that registers it for the whole origin (scope `/`): it acts only on
  // requests marked for multicast, so it may control every page.
  [PLAYER_SW_PATH]: {
    file: 'sw.js',
    type: 'text/javascript; charset=utf-8',
    headers: { 'Service-Worker-Allowed': '/' },
  },
  // The Warp player page (src/web/warp): MSE fed by a Warp session over WebTransport or its WebSocket fallback.
  '/warp/': { file: 'warp.html', type: 'text/html; charset=utf-8' },
  '/warp/player.js': { file: 'warp-player.js', type: 'text/javascript; charset=utf-8' },
};

/** The player file served at `path`, if any. */
export function playerFile(path: string): PlayerFile | undefined {
  return Object.hasOwn(PLAYER_FILES, path) ? PLAYER_FILES[path] : undefined;
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
