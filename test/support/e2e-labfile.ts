/**
 * Labfile texts of the e2e suite and the bench: labs on the harness's bridge (test/e2e/run.sh
 * makes it, 10.77.0.0/24 with the host at .1, inside the harness's network namespace).
 */

/** The harness bridge's name (LAB_E2E_BRIDGE, set by test/e2e/run.sh and test/bench/run.sh). */
export const HARNESS_BRIDGE = process.env.LAB_E2E_BRIDGE ?? 'labbr0';

/**
 * A debian-12-lab lab on the harness bridge: `nodes` are the list items under `nodes:`
 * (each line ending in a newline), `tail` more top-level keys after them (units:).
 */
export function bridgeLabfile(lab: { name: string; services: string; nodes: string; tail?: string }): string {
  return `name: ${lab.name}
template: debian-12-lab
network:
  mode: bridge
  bridge: ${HARNESS_BRIDGE}
  cidr: 10.77.0.0/24
  gateway: 10.77.0.1
defaults: { cpus: 1, memory: 768MiB, disk: 4GiB }
services: ${lab.services}
nodes:
${lab.nodes}${lab.tail ?? ''}`;
}
