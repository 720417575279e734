/**
 * The baseline for the web tier: a bare Express app on the same machine that
 * parses the same form and answers the same 303, doing nothing else.
 */
import express from 'express';

const app = express();
app.use(express.urlencoded({ extended: false, limit: '10kb' }));
app.post('/transaction', (_req, res) => {
  res.redirect(303, '/');
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(`bare express ready at http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
