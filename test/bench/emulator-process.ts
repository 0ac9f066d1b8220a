/** The emulator in a process of its own, so the proxy under test does not share its CPU time. */
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { toNodeHandler } from '../../src/server/index.js'
import { createClerkEmulator } from '../../src/testing/index.js'
import { listen } from '../helpers/servers.js'

const [file, count] = process.argv.slice(2) as [string, string]
// Sessions created a minute ago: their tokens have expired, as the tokens Clerk's SDK refreshes have.
let offsetMs = -61_000
const clerk = createClerkEmulator({ now: () => Date.now() + offsetMs })
const apiUrl = await listen(createServer(toNodeHandler(clerk.handler, { maxBodyBytes: 1 << 16 })))
const sessions = Array.from({ length: Number(count) }, () => clerk.createSession({ origin: 'http://bench.local' }))
offsetMs = 0
const { secretKey, publishableKey, cookieSuffix } = clerk
writeFileSync(file, JSON.stringify({ apiUrl, secretKey, publishableKey, cookieSuffix, sessions }))
process.on('SIGTERM', () => process.exit(0))
setTimeout(() => process.exit(0), 120_000) // never outlives a bench run
