export type Listener<T> = (value: T) => void

/** A value with subscribers, notified only when `set` actually changes something. */
export class Store<T extends object> {
  #value: T
  readonly #listeners = new Set<Listener<T>>()

  constructor(initial: T) {
    this.#value = Object.freeze({ ...initial })
  }

  get(): T {
    return this.#value
  }

  set(patch: Partial<T>): void {
    const keys = Object.keys(patch) as (keyof T)[]
    if (keys.every((key) => Object.is(this.#value[key], patch[key]))) return
    this.#value = Object.freeze({ ...this.#value, ...patch })
    for (const listener of [...this.#listeners]) {
      try {
        listener(this.#value)
      } catch (error) {
        // A subscriber's bug must not stop the others or the agent.
        queueMicrotask(() => {
          throw error
        })
      }
    }
  }

  subscribe(listener: Listener<T>): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }
}
