import { Logger, UnauthorizedException } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express, { type NextFunction, type Request, type Response } from 'express';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { clearSessionCookie, type HttpEdge, requestIdOf, startSession, TooManyAuthFailures } from '../common';

/** The dashboard's static files (HTML, CSS, JS): served from here in `src/` and copied beside the build in `dist/`. */
export const PUBLIC_DIR = path.join(__dirname, 'public');
/** KaTeX's stylesheet and fonts for math in result previews, served from the installed package (no CDN). */
export const KATEX_DIR = path.dirname(require.resolve('katex'));

/**
 * The dashboard page, its static files, the sign-in/sign-out form handlers, and the login form for a browser whose
 * request for the page the edge's token check refused. Mounted by the HTTP edge (`configureHttpEdge`), after its
 * token check and before its problem+json error handler.
 */
export function mountDashboard(app: NestExpressApplication, { check, problems }: HttpEdge): void {
  const logger = new Logger('ApiToken');
  const index = path.join(PUBLIC_DIR, 'index.html');
  app.use(
    '/ui',
    express.static(PUBLIC_DIR, { index: false, fallthrough: true, maxAge: 0, dotfiles: 'deny' }),
  );
  // of the katex package, only its stylesheet and fonts
  const katexFiles = express.Router();
  katexFiles.get('/katex.min.css', (_req, res) => res.sendFile(path.join(KATEX_DIR, 'katex.min.css')));
  katexFiles.use('/fonts', express.static(path.join(KATEX_DIR, 'fonts'), { index: false, dotfiles: 'deny' }));
  app.use('/ui/vendor/katex', katexFiles);
  const router = express.Router();
  router.get('/', (_req, res, next) => {
    readFile(index, 'utf8').then((html) => {
      res.setHeader('Cache-Control', 'no-store');
      res.type('html').send(indexPage(html, check.enabled));
    }, next);
  });
  router.get('/login', (_req, res) => {
    res.status(200).type('html').send(loginPage());
  });
  router.post('/login', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    if (!check.enabled) return void res.redirect(303, '/');
    try {
      check.assertToken((req.body as Record<string, unknown> | undefined)?.token, req.ip);
    } catch (err) {
      const throttled = err instanceof TooManyAuthFailures;
      if (throttled) res.setHeader('Retry-After', String(err.retryAfterSeconds));
      logger.warn({
        request_id: requestIdOf(req),
        remote_address: req.ip,
        status_code: throttled ? 429 : 401,
        msg: throttled
          ? 'sign-in refused: too many failed attempts from this client'
          : 'sign-in refused: wrong token',
      });
      // a browser's form gets the form again; a client that asks for JSON gets problem+json
      if (req.accepts(['html', 'json']) === 'json') return problems.send(err, req, res);
      res
        .status(throttled ? 429 : 401)
        .type('html')
        .send(loginPage(throttled ? tooManyAttempts(err.retryAfterSeconds) : 'That token is not valid.'));
      return;
    }
    startSession(check, req, res);
    res.redirect(303, '/');
  });
  router.post('/logout', (req, res) => {
    // ends the session server-side: a copy of the cookie stops working too
    const session = check.sessionOf(req);
    if (session !== undefined) check.sessions.revoke(session);
    clearSessionCookie(res);
    res.redirect(303, check.enabled ? '/login' : '/');
  });
  app.use(router);
  // a browser opening the page without a valid credential gets the login form (401, or 429 saying how long to wait)
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    const refused = err instanceof UnauthorizedException || err instanceof TooManyAuthFailures;
    if (!refused || req.path !== '/' || req.method !== 'GET' || req.accepts(['json', 'html']) !== 'html') {
      return next(err);
    }
    const throttled = err instanceof TooManyAuthFailures;
    res
      .status(throttled ? 429 : 401)
      .type('html')
      .send(loginPage(throttled ? tooManyAttempts(err.retryAfterSeconds) : undefined));
  });
}

/** The page as served: without the "Sign out" button when the server has no API_TOKEN (there is nothing to end). */
export function indexPage(html: string, signOut: boolean): string {
  return signOut ? html : html.replace(/<!-- sign-out -->[\s\S]*?<!-- \/sign-out -->\n?/, '');
}

function tooManyAttempts(seconds: number): string {
  return `Too many failed sign-in attempts from this address: try again in ${seconds} s.`;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** The login form: no script, the dashboard's stylesheet, labelled field, an error in a live region. */
export function loginPage(error?: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · canvas-batch</title>
<link rel="stylesheet" href="/ui/style.css">
</head>
<body>
<main class="login" id="main">
<h1>canvas-batch</h1>
<form method="post" action="/login" class="card">
<p>This service needs its API token.</p>
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<p role="alert" class="error">${error ? escapeHtml(error) : ''}</p>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`;
}
