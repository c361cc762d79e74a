import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium, as the project's bootstrap installs it. */
export const CHROMIUM = process.env.PUSHCAST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Headless Chromium for end-to-end tests. Background networking is off because this machine reaches no
 * network but its own; autoplay needs no gesture so that the player starts by itself.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}
