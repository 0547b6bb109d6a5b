import { AgentClient, type GuestLink } from '../guest/agent.js';
import type { SshTarget } from '../guest/ssh.js';

/** The lab's connection agent when it runs (or can start), else undefined: connect directly. */
export function labAgent(privateDir: string): Promise<AgentClient | undefined> {
  return AgentClient.get(privateDir, { start: true }).catch(() => undefined);
}

/**
 * A link to a node: through the agent's kept-open connection when there is one, else a new
 * one. ssh2 is loaded only then: a command that goes through the agent starts without it.
 */
export async function openLink(
  agent: AgentClient | undefined,
  target: SshTarget,
  timeoutMs: number,
): Promise<GuestLink> {
  if (!agent) {
    const { GuestSession } = await import('../guest/ssh.js');
    return GuestSession.connect(target, { timeoutMs });
  }
  await agent.connect(target, timeoutMs);
  return agent.link(target);
}
