// Drives Debian's firefox-esr over WebDriver BiDi with puppeteer-core (no
// browser download): opens the host-matrix harness and prints its answer as
// one JSON line. Usage: node firefox.mjs URL JOB.json
//   JOB.json: {"cases": [{"input": "/inputs/x.jpg", "options": {...}}], "repeat": N,
//              "timeoutMs": the longest one protocol call (the whole matrix) may take}
import { readFileSync } from 'node:fs'
import puppeteer from 'puppeteer-core'

const [url, jobPath] = process.argv.slice(2)
const job = JSON.parse(readFileSync(jobPath, 'utf8'))
const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: process.env.PIXPORT_FIREFOX || '/usr/bin/firefox-esr',
  headless: true,
  // The matrix is one call, and a cold start on a loaded machine is slow:
  // the test sizes both budgets.
  protocolTimeout: job.timeoutMs,
  timeout: job.timeoutMs,
})
try {
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  await page.goto(url)
  await page.waitForFunction(() => window.harnessReady === true)
  const results = await page.evaluate((cases, repeat) => window.runMatrix(cases, repeat), job.cases, job.repeat)
  console.log(JSON.stringify({ browser: await browser.version(), results, errors }))
} finally {
  await browser.close()
}
