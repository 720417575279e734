/**
 * The statement: the customer's movements, newest first, with the balance
 * after each, in pages of 10 (older and newer), and the whole history as a
 * CSV download. The bank answers only for the logged-in customer's own
 * account, so neither can show anyone else's rows.
 */
import { stringify } from 'csv-stringify/sync';
import { Router, type Request } from 'express';

import { STATEMENT_MAX_OFFSET, STATEMENT_MAX_PAGE, type StatementEntry } from '../../protocol/messages.ts';
import { plainCents } from '../../protocol/money.ts';
import { callBank, callerOf } from '../bank-call.ts';
import type { BankLink } from '../bank-link.ts';
import { liveCustomer, refuse, requireCustomer } from '../customer.ts';
import { formatCents, formatTime } from '../display.ts';

export type StatementDeps = { bank: BankLink; sessionIdleSeconds: number; timeZone: string };

export const STATEMENT_PAGE = 10;
const CSV_COLUMNS = ['date', 'type', 'amount', 'balance_after'];
const LAST_PAGE = Math.floor(STATEMENT_MAX_OFFSET / STATEMENT_PAGE) + 1;

/** `?page=N`, 1 being the newest; anything else is page 1. */
function pageOf(req: Request): number {
  const raw = req.query.page;
  if (typeof raw !== 'string' || !/^[1-9][0-9]{0,5}$/.test(raw)) return 1;
  return Math.min(Number(raw), LAST_PAGE);
}

const kindName = (entry: StatementEntry): string => (entry.kind === 'deposit' ? 'Deposit' : 'Withdrawal');

/** One CSV row: the time in ISO 8601 UTC, and amounts without currency sign or separators, for spreadsheets. */
function csvRow(entry: StatementEntry): string[] {
  const sign = entry.kind === 'deposit' ? '' : '-';
  return [entry.at, kindName(entry), `${sign}${plainCents(entry.amountCents)}`, plainCents(entry.balanceAfterCents)];
}

export function statementRoutes(deps: StatementDeps): Router {
  const router = Router();
  const customerOnly = requireCustomer(deps.bank, deps.sessionIdleSeconds);

  router.get('/statement', customerOnly, async (req, res) => {
    const customer = liveCustomer(res);
    const page = pageOf(req);
    const offset = (page - 1) * STATEMENT_PAGE;
    const outcome = await callBank(() =>
      customer.run((client, session) => client.statement(session, { offset, limit: STATEMENT_PAGE }, callerOf(req))),
    );
    if (!outcome.ok) return refuse(req, res, outcome.error);
    const { entries, more } = outcome.value;
    res.render('statement', {
      title: page === 1 ? 'Statement' : `Statement, page ${page}`,
      balance: formatCents(outcome.value.balanceCents),
      first: offset + 1,
      last: offset + entries.length,
      page,
      older: more ? `/statement?page=${page + 1}` : null,
      newer: page > 1 ? (page === 2 ? '/statement' : `/statement?page=${page - 1}`) : null,
      entries: entries.map((entry) => ({
        date: formatTime(entry.at, deps.timeZone),
        iso: entry.at,
        type: kindName(entry),
        amount: `${entry.kind === 'deposit' ? '+' : '−'}${formatCents(entry.amountCents)}`,
        balance: formatCents(entry.balanceAfterCents),
      })),
    });
  });

  router.get('/statement.csv', customerOnly, async (req, res) => {
    const customer = liveCustomer(res);
    const rows: string[][] = [];
    for (let offset = 0; offset <= STATEMENT_MAX_OFFSET; offset += STATEMENT_MAX_PAGE) {
      const outcome = await callBank(() =>
        customer.run((client, session) =>
          client.statement(session, { offset, limit: STATEMENT_MAX_PAGE }, callerOf(req)),
        ),
      );
      if (!outcome.ok) return refuse(req, res, outcome.error);
      rows.push(...outcome.value.entries.map(csvRow));
      if (!outcome.value.more) break;
    }
    res.set('Content-Type', 'text/csv; charset=utf-8');
    res.set('Content-Disposition', 'attachment; filename="statement.csv"');
    res.send(stringify(rows, { header: true, columns: CSV_COLUMNS, record_delimiter: 'windows' }));
  });

  return router;
}
