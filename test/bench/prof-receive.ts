/** Temporary: where a receiving tab's time goes. */
import { startApp } from '../helpers/app.js'
import { launchEngine, type EngineName } from '../browser/drivers/index.js'

const HEAD = `
  window.__handle = [];
  const add = BroadcastChannel.prototype.addEventListener;
  BroadcastChannel.prototype.addEventListener = function (type, fn, o) {
    if (type !== 'message') return add.call(this, type, fn, o);
    return add.call(this, type, function (e) {
      const t0 = performance.now();
      fn.call(this, e);
      const t1 = performance.now();
      if (e.data && e.data.type === 'token') window.__handle.push({ ms: t1 - t0, lag: performance.timeOrigin + t0 - (e.data.sentAt || 0) });
    }, o);
  };
  const post = BroadcastChannel.prototype.postMessage;
  BroadcastChannel.prototype.postMessage = function (m) { if (m && m.type === 'token') m.sentAt = performance.timeOrigin + performance.now(); return post.call(this, m) };
`
const engineName = (process.argv[2] ?? 'chromium') as EngineName
const app = await startApp({ tokenLifetimeSeconds: 4, unexpiredTokens: 'accept' }, { head: HEAD })
const engine = await launchEngine(engineName)
const session = await engine.newSession()
const pages = [await session.open(`${app.origin}/login`, 'front')]
for (let i = 1; i < 10; i++) pages.push(await session.open(app.origin, 'back'))
await new Promise((r) => setTimeout(r, 30_000))
const all = await Promise.all(pages.map((p) => p.evaluate(() => (window as unknown as { __handle: { ms: number; lag: number }[] }).__handle)))
const ms = all.flat().map((h) => h.ms).sort((a, b) => a - b)
const lag = all.flat().map((h) => h.lag).sort((a, b) => a - b)
const p = (v: number[], q: number) => v[Math.floor(q * (v.length - 1))]?.toFixed(3)
console.log(engineName, 'handler ms p50', p(ms, 0.5), 'p90', p(ms, 0.9), 'max', p(ms, 1), 'n', ms.length)
console.log(engineName, 'delivery lag ms p50', p(lag, 0.5), 'p90', p(lag, 0.9), 'max', p(lag, 1))
console.log(JSON.stringify(all.map((a) => a.map((h) => +h.ms.toFixed(2)))))
await session.close()
await engine.close()
await app.close()
