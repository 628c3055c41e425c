// The registry's generation token (hub.registry.caching writes it to REGISTRY_GENERATION_FILE on every change of
// the registry). deploy/nginx.conf keys its cached download decisions with it: a new token retires them all.
// No file yet (nothing published it): an empty token, which Django never accepts for a reusable main decision.
const fs = require('fs');

function token(r) {
    try {
        return fs.readFileSync(r.variables.hub_registry_generation_file, 'utf8').trim();
    } catch (e) {
        return '';
    }
}

export default { token };
