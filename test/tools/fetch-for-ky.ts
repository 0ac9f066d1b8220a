/**
 * A measurement stand-in, never shipped: the least of ky that `src/core/transport.ts` uses (one
 * POST of JSON, a timeout that rejects with `TimeoutError`, the caller's signal, no retries),
 * over `fetch`. `size-breakdown.ts --fetch-for-ky` bundles the `<script>` build with it in
 * place of ky, to say what ky costs the build against the smallest client that does its job.
 */
export class TimeoutError extends Error {}

interface Options {
  credentials?: RequestCredentials
  timeout?: number
  headers?: Record<string, string>
  fetch?: typeof fetch
  json?: unknown
  signal?: AbortSignal
}

function create(defaults: Options) {
  return async (url: string, options: Options): Promise<Response> => {
    const o = { ...defaults, ...options }
    const timeout = new AbortController()
    const timer = setTimeout(() => timeout.abort(new TimeoutError(`Request timed out: POST ${url}`)), o.timeout)
    const signal = o.signal ? AbortSignal.any([o.signal, timeout.signal]) : timeout.signal
    try {
      return await (o.fetch ?? fetch)(url, {
        method: 'POST',
        credentials: o.credentials,
        headers: { 'content-type': 'application/json', accept: 'application/json', ...o.headers },
        body: JSON.stringify(o.json),
        signal,
      })
    } catch (error) {
      if (timeout.signal.aborted && !o.signal?.aborted) throw timeout.signal.reason
      throw error
    } finally {
      clearTimeout(timer)
    }
  }
}

export default { create }
