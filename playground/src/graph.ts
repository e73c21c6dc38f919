// Statechart graphs for the playground: XState machine definitions as plain JSON, and state values as active node ids.

/** One state of a statechart; compound and parallel states hold their children. */
export interface GraphNode {
  /** XState's node id: the machine id and the path, joined by dots (`run.live.running`). */
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** Id of the initial child of a compound state. */
  initial?: string;
  description?: string;
  children: GraphNode[];
}

/** One transition to one target (a transition with several targets becomes several edges). */
export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  /** The event type; delayed transitions read `after <delay>`, eventless ones `always`. */
  event: string;
  kind: 'event' | 'after' | 'always';
  guard?: string;
  actions: string[];
}

/** A machine as the page draws it. */
export interface MachineGraph {
  kind: string;
  title: string;
  version: number;
  root: GraphNode;
  edges: GraphEdge[];
}

/** The parts of an XState `StateNode` the graph reads (kept structural: no runtime import of xstate). */
export interface StateNodeLike {
  id: string;
  key: string;
  type: string;
  description?: string;
  initial?: { target: ReadonlyArray<{ id: string }> } | undefined;
  states: Record<string, StateNodeLike>;
  transitions: Map<string, ReadonlyArray<TransitionLike>>;
  always?: ReadonlyArray<TransitionLike> | undefined;
}

interface TransitionLike {
  target?: ReadonlyArray<{ id: string }> | undefined;
  guard?: unknown;
  actions?: ReadonlyArray<unknown>;
}

/** A readable guard: `isOwner`, `isCurrent(design)`, `canRetry && !isFatal`. */
export function guardLabel(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const fn = guard as { name?: string; guards?: unknown[] };
    const parts = (fn.guards ?? []).map((g) => guardLabel(g) ?? '?');
    if (fn.name === 'not') return `!${parts[0] ?? '?'}`;
    if (fn.name === 'and') return parts.join(' && ');
    if (fn.name === 'or') return parts.map((p) => (p.includes(' ') ? `(${p})` : p)).join(' || ');
    return fn.name !== undefined && fn.name !== '' ? fn.name : 'guard';
  }
  if (typeof guard === 'object') {
    const g = guard as { type?: unknown; params?: unknown };
    const type = typeof g.type === 'string' ? g.type : 'guard';
    if (g.params !== undefined && g.params !== null && typeof g.params === 'object') {
      const values = Object.values(g.params as Record<string, unknown>).map((v) =>
        typeof v === 'string' ? v : JSON.stringify(v),
      );
      return `${type}(${values.join(', ')})`;
    }
    return type;
  }
  return String(guard);
}

function actionLabel(action: unknown): string | undefined {
  if (typeof action === 'string') return action;
  if (
    action !== null &&
    typeof action === 'object' &&
    typeof (action as { type?: unknown }).type === 'string'
  )
    return (action as { type: string }).type;
  return undefined;
}

/** `xstate.after.stageTimeout.run.live…` → `after stageTimeout`. */
function eventLabel(event: string): { event: string; kind: GraphEdge['kind'] } {
  if (event.startsWith('xstate.after.'))
    return { event: `after ${event.split('.')[2] ?? ''}`, kind: 'after' };
  return { event, kind: 'event' };
}

/**
 * The graph of a machine: every state with its children, and every transition that changes state.
 * Targetless transitions (actions only, such as refusing an event) are left out: they never move the
 * highlight.
 */
export function machineGraph(
  root: StateNodeLike,
  meta: { kind: string; title: string; version: number },
): MachineGraph {
  const edges: GraphEdge[] = [];
  const add = (source: string, t: TransitionLike, event: string, kind: GraphEdge['kind']) => {
    const guard = guardLabel(t.guard);
    const actions = (t.actions ?? []).map(actionLabel).filter((a): a is string => a !== undefined);
    for (const target of t.target ?? []) {
      edges.push({
        id: `e${edges.length}`,
        source,
        target: target.id,
        event,
        kind,
        ...(guard === undefined ? {} : { guard }),
        actions,
      });
    }
  };
  const walk = (node: StateNodeLike): GraphNode => {
    for (const [event, list] of node.transitions) {
      const label = eventLabel(event);
      for (const t of list) add(node.id, t, label.event, label.kind);
    }
    for (const t of node.always ?? []) add(node.id, t, 'always', 'always');
    const type = (
      ['atomic', 'compound', 'parallel', 'final', 'history'].includes(node.type) ? node.type : 'atomic'
    ) as GraphNode['type'];
    const initial = node.initial?.target[0]?.id;
    return {
      id: node.id,
      key: node.key,
      type,
      ...(initial === undefined ? {} : { initial }),
      ...(node.description === undefined ? {} : { description: node.description }),
      children: Object.values(node.states).map(walk),
    };
  };
  return { ...meta, root: walk(root), edges };
}

/**
 * Node ids active in a state value: `{ live: { running: { design: 'working' } } }` under root `run`
 * gives `run`, `run.live`, `run.live.running`, `run.live.running.design`, `run.live.running.design.working`.
 */
export function activeStateIds(value: unknown, rootId: string): string[] {
  const out = [rootId];
  const walk = (v: unknown, prefix: string) => {
    if (typeof v === 'string') {
      out.push(`${prefix}.${v}`);
      return;
    }
    if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
        out.push(`${prefix}.${k}`);
        walk(child, `${prefix}.${k}`);
      }
    }
  };
  walk(value, rootId);
  return out;
}

/** Every node of a graph, depth first. */
export function allNodes(root: GraphNode): GraphNode[] {
  const out: GraphNode[] = [];
  const walk = (n: GraphNode) => {
    out.push(n);
    for (const c of n.children) walk(c);
  };
  walk(root);
  return out;
}
