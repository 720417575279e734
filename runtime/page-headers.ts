/**
 * The security headers every HTML page of ours is served with, the ATM's and
 * the operator's alike: a content security policy with no inline script or
 * style (everything comes from the app's own /public), no framing, no
 * referrer. What differs between them is passed in: where forms may post
 * (the operator page has none) and whether the page is served over TLS.
 */
import type { RequestHandler } from 'express';
import helmet from 'helmet';

export type PageHeaderOptions = {
  /** `'self'` for pages with forms; `'none'` for pages without. */
  formAction: "'self'" | "'none'";
  /** Served over TLS (directly or behind a TLS proxy): HSTS and upgrade of insecure requests. */
  secure: boolean;
};

export function pageSecurityHeaders(options: PageHeaderOptions): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: [options.formAction],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
        ...(options.secure ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    frameguard: { action: 'deny' },
    strictTransportSecurity: options.secure,
    referrerPolicy: { policy: 'no-referrer' },
  });
}
