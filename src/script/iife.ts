import { createSessionKeeper, type SessionKeeper } from '../index.js'
import { autoStart } from './autoStart.js'

export * from '../index.js'

declare global {
  interface Window {
    /** The keeper created by the `<script data-endpoint>` tag. */
    sessionKeeper?: SessionKeeper
  }
}

// The IIFE runs once, when the <script> tag is parsed: this is its only side effect.
if (typeof document !== 'undefined') autoStart(document.currentScript, window, createSessionKeeper)
