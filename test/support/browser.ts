/**
 * Debian's chromium, headless, driven by puppeteer-core inside a lab namespace: the browser
 * reaches only the lab's addresses, and talks to the test over a pipe (no DevTools port). Its
 * profile is a directory of the caller's; `closeBrowser` leaves no chromium process behind, also
 * when the browser hangs.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'puppeteer-core';

export const CHROMIUM = '/usr/bin/chromium';

export interface LabBrowser {
  browser: Browser;
  /** The profile directory: every chromium process of this browser has it on its command line. */
  profile: string;
}

/** Starts chromium in the network namespace `netns` (by a small wrapper under `dir`), trusting any certificate. */
export async function launchInNetns(netns: string, dir: string): Promise<LabBrowser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (deploy/install.sh installs it)`);
  const puppeteer = (await import('puppeteer-core')).default;
  fs.mkdirSync(dir, { recursive: true });
  const profile = join(dir, 'chromium-profile');
  const wrapper = join(dir, 'chromium-in-netns');
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec nsenter --net=/run/netns/${netns} -- ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  const browser = await puppeteer.launch({
    executablePath: wrapper,
    pipe: true,
    headless: true,
    acceptInsecureCerts: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage', '--disable-extensions', '--disable-background-networking'],
  });
  return { browser, profile };
}

/** The pids of processes whose command line names `profile`. */
function processesOf(profile: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(profile)) out.push(Number(entry));
    } catch {
      // gone already
    }
  }
  return out;
}

/** Closes the browser (SIGKILLs its process group if it does not close in time), then any chromium process of its profile left; resolves once none is. */
export async function closeBrowser(b: LabBrowser | undefined): Promise<void> {
  if (!b) return;
  const pid = b.browser.process()?.pid;
  await Promise.race([b.browser.close().catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
  if (pid) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // the group is gone
    }
  }
  for (let i = 0; i < 50; i++) {
    const left = processesOf(b.profile);
    if (left.length === 0) return;
    for (const p of left) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`chromium processes of ${b.profile} still running: ${processesOf(b.profile).join(' ')}`);
}
