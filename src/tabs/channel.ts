import { PROTOCOL_VERSION, parseMessage, type Outgoing, type TabMessage } from './protocol.js'

/** The part of BroadcastChannel the agent uses; tests may pass an in-memory one. */
export interface ChannelLike {
  postMessage(message: unknown): void
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void
  close(): void
}

export type ChannelFactory = (name: string) => ChannelLike | null

export const browserChannel: ChannelFactory = (name) => (typeof BroadcastChannel === 'function' ? new BroadcastChannel(name) : null)

/**
 * One tab's end of the protocol: stamps outgoing messages, validates incoming ones, and counts
 * what it had to ignore (malformed, wrong version, or echoed from this tab's own id).
 */
export class TabChannel {
  ignored = 0
  readonly #listeners = new Set<(message: TabMessage) => void>()
  readonly #onMessage = (event: MessageEvent) => {
    const message = parseMessage(event.data)
    if (message === null || message.from === this.tabId) {
      this.ignored++
      return
    }
    for (const listener of [...this.#listeners]) listener(message)
  }

  constructor(
    private readonly channel: ChannelLike,
    readonly tabId: string,
  ) {
    channel.addEventListener('message', this.#onMessage)
  }

  post(message: Outgoing): void {
    try {
      this.channel.postMessage({ ...message, v: PROTOCOL_VERSION, from: this.tabId })
    } catch {
      // A closed channel (page unloading) is not worth an error: other tabs fall back on timers.
    }
  }

  /** Adds a listener; returns the function that removes it. */
  on(listener: (message: TabMessage) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  close(): void {
    this.#listeners.clear()
    this.channel.removeEventListener('message', this.#onMessage)
    this.channel.close()
  }
}
