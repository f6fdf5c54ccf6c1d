// Preload for the conformance CLI: adds `Authorization: Bearer $MCP_CONFORMANCE_BEARER`
// to every HTTP request made through undici's global dispatcher. That covers
// node's global fetch (used by the MCP SDK client transport and the raw SSE
// scenarios) and undici.request (used by dns-rebinding-protection).
// Usage: NODE_OPTIONS="--import=tests/mcp/inject-auth.mjs" MCP_CONFORMANCE_BEARER=TOKEN node conformance server ... (cargo xtask conformance does this)
import { getGlobalDispatcher, setGlobalDispatcher } from 'undici';

const token = process.env.MCP_CONFORMANCE_BEARER;
if (token) {
  const value = `Bearer ${token}`;
  const addAuth = (dispatch) => (opts, handler) => {
    const h = opts.headers;
    let headers;
    if (h == null) headers = { authorization: value };
    else if (Array.isArray(h)) headers = [...h, 'authorization', value];
    else if (typeof h[Symbol.iterator] === 'function') headers = [...h, ['authorization', value]];
    else headers = { ...h, authorization: value };
    return dispatch({ ...opts, headers }, handler);
  };
  setGlobalDispatcher(getGlobalDispatcher().compose(addAuth));
}
