// Loads packgate's own web page at `/` in headless Chromium on a phone-sized viewport,
// waits for stream `--stream` to be listed, clicks it, lets it play, takes a screenshot and
// prints one JSON line of what happened. The Rust test asserts on it.
//
//   node page.mjs --origin http://127.0.0.1:PORT --stream live/show --seconds 8 [--shot out.png]
//     [--format VALUE]  choose this option of the page's format select first (e.g. 'index.mpd|dash')
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const origin = opt('origin');
const stream = opt('stream');
const seconds = Number(opt('seconds', '8'));
const shot = opt('shot');
const format = opt('format');
const chromiumPath = process.env.PACKGATE_CHROMIUM || '/usr/bin/chromium';
const { chromium } = await import('playwright-core');

const profile = mkdtempSync(join(tmpdir(), 'packgate-page-'));
const deadline = setTimeout(() => { process.stderr.write('page.mjs: overall timeout\n'); process.exit(3); }, (seconds + 60) * 1000);
let browser;
try {
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 390, height: 844 },
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  const page = browser.pages()[0] || (await browser.newPage());
  const external = [];
  page.on('request', r => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) external.push(r.url()); });
  await page.goto(origin + '/');
  const button = page.locator('#streams button', { hasText: stream });
  await button.waitFor({ timeout: 20000 });
  const listed = await button.innerText();
  if (format) await page.selectOption('#format', format);
  await button.click();
  const start = Date.now();
  await page.waitForFunction(() => document.getElementById('video').currentTime > 0, null, { timeout: 20000 });
  const t0 = await page.evaluate(() => document.getElementById('video').currentTime);
  await page.waitForTimeout(seconds * 1000);
  const t1 = await page.evaluate(() => document.getElementById('video').currentTime);
  const layout = await page.evaluate(() => ({
    videoWidth: document.getElementById('video').getBoundingClientRect().width,
    pageWidth: document.documentElement.scrollWidth,
    overlay: document.getElementById('overlay').textContent,
    url: document.getElementById('url').textContent,
    dash: !!window.dashjs,
  }));
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ listed, advanced: t1 - t0, waited: (Date.now() - start) / 1000, external, ...layout }));
} catch (e) {
  process.stderr.write(`page.mjs: ${e.stack || e}\n`);
  process.exitCode = 2;
} finally {
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
