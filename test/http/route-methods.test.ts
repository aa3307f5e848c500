/** RouteMethods: the methods a request path is answered with, from the route patterns. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RouteMethods, routePattern } from '../../src/http/route-methods.js';

describe('RouteMethods', () => {
  it('matches static paths, parameters, wildcards and an optional trailing slash', () => {
    assert.ok(routePattern('/ztp/mng/list').test('/ztp/mng/list/'));
    assert.ok(routePattern('/ztp/mng/list/').test('/ztp/mng/list'));
    assert.ok(routePattern('/ztp/mng/:id/delete').test('/ztp/mng/a%20b/delete'));
    assert.ok(!routePattern('/ztp/mng/:id/delete').test('/ztp/mng/a/b/delete'));
    assert.ok(routePattern('/docs/*').test('/docs/static/index.html'));
    assert.ok(routePattern('/').test('/'));
    assert.ok(!routePattern('/a.b').test('/axb'));
  });

  it('lists every method of every matching route once, sorted, ignoring the query', () => {
    const routes = new RouteMethods();
    routes.add('PUT', '/ztp/register/:id');
    routes.add(['GET', 'HEAD'], '/ztp/mng/:id');
    routes.add('PUT', '/ztp/mng/:id');
    routes.add('GET', '/ztp/mng/list');
    assert.deepEqual(routes.allowed('/ztp/register/x?token=1'), ['PUT']);
    assert.deepEqual(routes.allowed('/ztp/mng/list'), ['GET', 'HEAD', 'PUT']);
    assert.deepEqual(routes.allowed('/elsewhere'), []);
  });
});
