/**
 * The web tier: deposits over HTTP through one ATM (signed-in browsers with
 * session cookies and CSRF tokens, each POST a real deposit at the bank)
 * against a bare Express route on the same machine.
 */
import { secureRandom } from '../protocol/crypto.ts';

type User = { cookie: string; csrf: string };

/** The cookie jar after a response: cookies it sets replace same-named ones (session, CSRF nonce). */
function cookieFrom(response: Response, previous = ''): string {
  const jar = new Map<string, string>();
  const set = response.headers.getSetCookie().map((value) => value.split(';')[0] ?? '');
  for (const pair of [...previous.split('; '), ...set]) {
    const eq = pair.indexOf('=');
    if (eq > 0) jar.set(pair.slice(0, eq), pair);
  }
  return [...jar.values()].join('; ');
}

async function form(url: string, body: Record<string, string>, cookie: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams(body).toString(),
  });
}

const csrfIn = (html: string): string => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

export async function signInUsers(base: string, count: number, prefix: string): Promise<User[]> {
  const users: User[] = [];
  for (let i = 0; i < count; i += 1) {
    const username = `${prefix}${i}`;
    let page = await fetch(`${base}/signup`);
    let cookie = cookieFrom(page);
    let response = await form(
      `${base}/signup`,
      { _csrf: csrfIn(await page.text()), username, password: 'bench-password' },
      cookie,
    );
    if (response.status !== 303) throw new Error(`signup failed: ${response.status}`);
    page = await fetch(`${base}/login`, { headers: { cookie } });
    cookie = cookieFrom(page, cookie);
    response = await form(
      `${base}/login`,
      { _csrf: csrfIn(await page.text()), username, password: 'bench-password' },
      cookie,
    );
    if (response.status !== 303) throw new Error(`login failed: ${response.status}`);
    cookie = cookieFrom(response, cookie);
    const home = await fetch(`${base}/`, { headers: { cookie } });
    cookie = cookieFrom(home, cookie);
    users.push({ cookie, csrf: csrfIn(await home.text()) });
  }
  return users;
}

/** POSTs deposits in a closed loop from every user for `seconds`; returns requests per second. */
export async function postLoop(base: string, users: User[], seconds: number): Promise<number> {
  let count = 0;
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    users.map(async (user) => {
      while (performance.now() < deadline) {
        const response = await form(
          `${base}/transaction`,
          { _csrf: user.csrf, txId: secureRandom(12).toString('base64url'), action: 'deposit', amount: '1' },
          user.cookie,
        );
        await response.arrayBuffer();
        if (response.status !== 303) throw new Error(`deposit failed: ${response.status}`);
        count += 1;
      }
    }),
  );
  return count / seconds;
}
