/**
 * WCAG 2.x AA: text needs a contrast ratio of at least 4.5:1 against its
 * background. Checks every text/background pair the stylesheet defines.
 */
import fs from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

const css = fs.readFileSync(path.resolve(import.meta.dirname, '../../public/styles.css'), 'utf8');

function variable(name: string): string {
  const match = new RegExp(`--${name}:\\s*(#[0-9a-fA-F]{6})`).exec(css);
  if (!match?.[1]) throw new Error(`--${name} is not a 6-digit colour in styles.css`);
  return match[1];
}

/** Relative luminance, WCAG 2.x definition. */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * (r ?? 0) + 0.7152 * (g ?? 0) + 0.0722 * (b ?? 0);
}

export function contrast(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return ((light ?? 0) + 0.05) / ((dark ?? 0) + 0.05);
}

describe('colour contrast (WCAG AA, 4.5:1 for text)', () => {
  it('knows the reference values', () => {
    expect(contrast('#000000', '#ffffff')).toBeCloseTo(21, 5);
    expect(contrast('#777777', '#ffffff')).toBeLessThan(4.5);
  });

  it.each([
    ['ink', 'panel'],
    ['muted', 'panel'],
    ['accent', 'panel'],
    ['accent-ink', 'accent'],
    ['ok-ink', 'ok-bg'],
    ['err-ink', 'err-bg'],
    ['info-ink', 'info-bg'],
    ['warn-ink', 'warn-bg'],
  ])('--%s on --%s', (text, background) => {
    expect(contrast(variable(text), variable(background))).toBeGreaterThanOrEqual(4.5);
  });
});
