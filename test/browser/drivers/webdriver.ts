/**
 * The handful of W3C WebDriver Classic endpoints the WebKit driver uses, over plain `fetch`.
 * https://www.w3.org/TR/webdriver2/
 */
export class WebDriverError extends Error {
  constructor(
    readonly error: string,
    message: string,
  ) {
    super(`WebDriver ${error}: ${message}`)
  }
}

export class WebDriverClient {
  constructor(readonly base: string) {}

  async command<T = unknown>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, timeoutMs = 60_000): Promise<T> {
    const response = await fetch(this.base + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    })
    const text = await response.text()
    let parsed: { value?: { error?: string; message?: string } & T }
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new WebDriverError('unknown error', `${response.status} ${text.slice(0, 200)}`)
    }
    const value = parsed.value
    if (!response.ok || (value && typeof value === 'object' && typeof value.error === 'string')) {
      throw new WebDriverError(value?.error ?? String(response.status), value?.message ?? text.slice(0, 200))
    }
    return value as T
  }

  /** Waits until the driver answers `/status`. */
  async ready(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        await this.command('GET', '/status', undefined, 1_000)
        return
      } catch (error) {
        if (Date.now() > deadline) throw error
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
}
