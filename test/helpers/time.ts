import { vi } from 'vitest'

/** Fake setTimeout and Date; setImmediate stays real so BroadcastChannel messages still flow. */
export function useFakeTime(startMs = Date.UTC(2026, 10, 26, 12)): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'], now: startMs })
}

/** Lets real message deliveries and the promise chains they start run to completion. */
export async function flush(rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    await vi.advanceTimersByTimeAsync(0)
  }
}

/** Advances fake time in small steps, delivering messages between steps. */
export async function advance(ms: number, stepMs = 50): Promise<void> {
  for (let left = ms; left > 0; left -= stepMs) {
    await vi.advanceTimersByTimeAsync(Math.min(stepMs, left))
    await flush(2)
  }
}

/** Moves the wall clock without running timers: what a machine waking from sleep sees. */
export function jumpClock(ms: number): void {
  vi.setSystemTime(Date.now() + ms)
}

/** Real time passing (servers, browsers); with fake timers, use `advance`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
