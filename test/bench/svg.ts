/**
 * Small charts as plain SVG markup, for the benchmark's results and the README: grouped bars on
 * a linear or logarithmic scale. No dependency; the text is real text (readable, searchable).
 */

export interface BarChart {
  title: string
  /** One group of bars per label (e.g. "1 tab", "5 tabs"). */
  groups: string[]
  /** One bar per series in every group; `null` for a value not measured. */
  series: { name: string; values: (number | null)[]; color?: string }[]
  yLabel: string
  log?: boolean
  /** Source line under the chart. */
  note?: string
  /** How each bar's value is printed above it. */
  format?: (value: number) => string
}

const PALETTE = ['#d65a28', '#8a5cc7', '#1f9d6a', '#b7791f', '#5f6b7a', '#2f6fde']
const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

export function barChart(chart: BarChart): string {
  const width = 720
  // The legend wraps: one row per width's worth of series names.
  const legendRows: { name: string; color: string; x: number }[][] = [[]]
  let lx = 64
  chart.series.forEach((series, s) => {
    const itemW = 24 + series.name.length * 6.6
    if (lx + itemW > width - 16 && legendRows.at(-1)!.length > 0) {
      legendRows.push([])
      lx = 64
    }
    legendRows.at(-1)!.push({ name: series.name, color: series.color ?? PALETTE[s % PALETTE.length]!, x: lx })
    lx += itemW
  })
  const legendH = legendRows.length * 16
  const height = 360 + legendH
  const margin = { top: 48, right: 16, bottom: 72 + legendH, left: 64 }
  const plotW = width - margin.left - margin.right
  const plotH = height - margin.top - margin.bottom
  const values = chart.series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v))
  const max = Math.max(1, ...values)
  const format = chart.format ?? ((v: number) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : String(Number(v.toPrecision(3)))))
  // Log scale from 1 (or the smallest value) to the next power of ten above the largest.
  const logMin = chart.log ? Math.floor(Math.log10(Math.max(0.1, Math.min(1, ...values)))) : 0
  const logMax = chart.log ? Math.ceil(Math.log10(max)) : 0
  const linStep = niceStep(max / 4)
  const linMax = Math.ceil(max / linStep) * linStep
  const y = (v: number) =>
    chart.log
      ? margin.top + plotH - ((Math.log10(Math.max(v, 10 ** logMin)) - logMin) / (logMax - logMin)) * plotH
      : margin.top + plotH - (v / linMax) * plotH
  const ticks = chart.log
    ? Array.from({ length: logMax - logMin + 1 }, (_, i) => 10 ** (logMin + i))
    : Array.from({ length: Math.round(linMax / linStep) + 1 }, (_, i) => linStep * i)

  const parts: string[] = []
  parts.push(`<text x="${margin.left}" y="24" class="title">${escapeXml(chart.title)}</text>`)
  for (const tick of ticks) {
    parts.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${y(tick)}" y2="${y(tick)}" class="grid"/>`)
    parts.push(`<text x="${margin.left - 6}" y="${y(tick) + 4}" class="tick" text-anchor="end">${escapeXml(format(tick))}</text>`)
  }
  parts.push(
    `<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" class="tick" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
  )
  const groupW = plotW / chart.groups.length
  const barW = Math.min(48, (groupW * 0.8) / chart.series.length)
  chart.groups.forEach((group, g) => {
    const x0 = margin.left + g * groupW + (groupW - barW * chart.series.length) / 2
    chart.series.forEach((series, s) => {
      const value = series.values[g]
      if (value === null || value === undefined || !Number.isFinite(value)) return
      const color = series.color ?? PALETTE[s % PALETTE.length]
      const top = y(value)
      const x = x0 + s * barW
      parts.push(
        `<rect x="${x + 2}" y="${top}" width="${barW - 4}" height="${margin.top + plotH - top}" fill="${color}"><title>${escapeXml(`${series.name}, ${group}: ${format(value)}`)}</title></rect>`,
      )
      parts.push(`<text x="${x + barW / 2}" y="${top - 4}" class="value" text-anchor="middle">${escapeXml(format(value))}</text>`)
    })
    parts.push(
      `<text x="${margin.left + g * groupW + groupW / 2}" y="${margin.top + plotH + 18}" class="tick" text-anchor="middle">${escapeXml(group)}</text>`,
    )
  })
  legendRows.forEach((row, r) => {
    const top = margin.top + plotH + 30 + r * 16
    for (const item of row) {
      parts.push(`<rect x="${item.x}" y="${top}" width="12" height="12" fill="${item.color}"/>`)
      parts.push(`<text x="${item.x + 16}" y="${top + 10}" class="tick">${escapeXml(item.name)}</text>`)
    }
  })
  // The note, wrapped on words into at most two lines.
  const lines = wrap(chart.note ?? '', 118).slice(0, 2)
  lines.forEach((line, i) => {
    parts.push(`<text x="${margin.left}" y="${height - 22 + i * 13}" class="note">${escapeXml(line)}</text>`)
  })

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(chart.title)}">`,
    '<style>text{font:12px system-ui,sans-serif;fill:#1f2937}.title{font-size:15px;font-weight:600}.tick{fill:#4b5563}.value{font-size:11px;fill:#111827}.note{font-size:10px;fill:#6b7280}.grid{stroke:#e5e7eb}</style>',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}

/** The smallest of 1, 2, 5 × 10ⁿ not below `value`. */
function niceStep(value: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(value, 1e-9)))
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power
  return 10 * power
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  if (line) lines.push(line)
  return lines
}
