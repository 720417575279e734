/** Help and the security notice: plain pages anyone can read, linked from every page's footer. */
import { Router } from 'express';

export function infoRoutes(): Router {
  const router = Router();
  router.get('/help', (req, res) => res.render('help', { title: 'Help', loggedIn: Boolean(req.session.customer) }));
  router.get('/security', (req, res) =>
    res.render('security', { title: 'Security notice', loggedIn: Boolean(req.session.customer) }),
  );
  return router;
}
