// Layered (Sugiyama-style) layout of a statechart: compound states as nested boxes, siblings ranked left to right.
import type { GraphEdge, GraphNode, MachineGraph } from './graph.ts';

/** A placed state, in absolute coordinates of the drawing. */
export interface Box {
  id: string;
  node: GraphNode;
  x: number;
  y: number;
  w: number;
  h: number;
  depth: number;
}

/** A drawn edge: every transition between the same two states shares one path and stacks its labels. */
export interface EdgePath {
  id: string;
  source: string;
  target: string;
  labels: string[];
  edges: GraphEdge[];
  /** SVG path data (a cubic Bézier). */
  d: string;
  /** Where the label goes. */
  lx: number;
  ly: number;
}

export interface GraphLayout {
  width: number;
  height: number;
  boxes: Box[];
  edges: EdgePath[];
}

const CHAR_W = 7;
const ATOMIC_H = 30;
const PAD = 14;
const HEADER = 24;
const COL_GAP = 120;
const ROW_GAP = 26;
const MARGIN = 20;

interface Size {
  w: number;
  h: number;
}

/** The label of an edge: `event [guard]`. */
export function edgeLabel(e: GraphEdge): string {
  return e.guard === undefined ? e.event : `${e.event} [${e.guard}]`;
}

/** Lays a machine graph out; pure and deterministic (the same graph always gives the same drawing). */
export function layoutGraph(graph: MachineGraph): GraphLayout {
  const parent = new Map<string, string | undefined>();
  const byId = new Map<string, GraphNode>();
  const index = (n: GraphNode, p: string | undefined) => {
    parent.set(n.id, p);
    byId.set(n.id, n);
    for (const c of n.children) index(c, n.id);
  };
  index(graph.root, undefined);

  const ancestors = (id: string): string[] => {
    const out: string[] = [];
    for (let cur: string | undefined = id; cur !== undefined; cur = parent.get(cur)) out.unshift(cur);
    return out;
  };
  // Each transition constrains the order of the two siblings under the states' lowest common ancestor.
  const siblingEdges = new Map<string, Array<[string, string]>>();
  for (const e of graph.edges) {
    if (!byId.has(e.source) || !byId.has(e.target)) continue;
    const a = ancestors(e.source);
    const b = ancestors(e.target);
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    const from = a[i];
    const to = b[i];
    const lca = a[i - 1];
    if (from === undefined || to === undefined || lca === undefined) continue;
    const list = siblingEdges.get(lca) ?? [];
    list.push([from, to]);
    siblingEdges.set(lca, list);
  }

  const rel = new Map<string, { x: number; y: number }>();
  const size = new Map<string, Size>();

  const measure = (node: GraphNode, depth: number): Size => {
    const label = node.type === 'history' ? 'H*' : node.key;
    const labelW = label.length * CHAR_W + 24;
    if (node.children.length === 0) {
      const s = { w: node.type === 'history' ? 40 : Math.max(64, labelW), h: ATOMIC_H };
      size.set(node.id, s);
      return s;
    }
    for (const c of node.children) measure(c, depth + 1);
    // Directions alternate with depth (left to right, then top to bottom), which keeps nested charts compact.
    const content =
      node.type === 'parallel'
        ? stackRegions(node)
        : placeLayers(node, siblingEdges.get(node.id) ?? [], depth % 2 === 1);
    const s = { w: Math.max(labelW, content.w + 2 * PAD), h: content.h + HEADER + PAD };
    size.set(node.id, s);
    return s;
  };

  // Regions of a parallel state run at once: one above the other, full width.
  const stackRegions = (node: GraphNode): Size => {
    let y = 0;
    let w = 0;
    for (const c of node.children) {
      const s = size.get(c.id) as Size;
      rel.set(c.id, { x: 0, y });
      y += s.h + ROW_GAP;
      w = Math.max(w, s.w);
    }
    for (const c of node.children) (size.get(c.id) as Size).w = w;
    return { w, h: Math.max(0, y - ROW_GAP) };
  };

  const placeLayers = (node: GraphNode, links: Array<[string, string]>, vertical: boolean): Size => {
    const ids = node.children.map((c) => c.id);
    const out = new Map<string, Set<string>>(ids.map((id) => [id, new Set()]));
    for (const [a, b] of links) if (a !== b) out.get(a)?.add(b);
    // Break cycles: edges that close a cycle in a depth-first walk (from the initial state) point backwards.
    const order = node.initial === undefined ? ids : [node.initial, ...ids.filter((i) => i !== node.initial)];
    const state = new Map<string, 1 | 2>();
    const finished: string[] = [];
    const forward = new Map<string, string[]>(ids.map((id) => [id, []]));
    const visit = (v: string) => {
      state.set(v, 1);
      for (const w of out.get(v) ?? []) {
        if (state.get(w) === 1) continue; // back edge
        forward.get(v)?.push(w);
        if (state.get(w) === undefined) visit(w);
      }
      state.set(v, 2);
      finished.push(v);
    };
    for (const v of order) if (state.get(v) === undefined) visit(v);
    // Longest path from the sources gives each state its column.
    const rank = new Map<string, number>(ids.map((id) => [id, 0]));
    for (const v of finished.reverse()) {
      for (const w of forward.get(v) ?? []) rank.set(w, Math.max(rank.get(w) ?? 0, (rank.get(v) ?? 0) + 1));
    }
    const columns: string[][] = [];
    for (const v of order) {
      const r = rank.get(v) ?? 0;
      const col = columns[r] ?? [];
      col.push(v);
      columns[r] = col;
    }
    // A few barycenter sweeps reduce crossings: each state moves towards the rows of its neighbours.
    const undirected = new Map<string, string[]>(ids.map((id) => [id, []]));
    for (const [a, b] of links) {
      if (a === b) continue;
      undirected.get(a)?.push(b);
      undirected.get(b)?.push(a);
    }
    const cols = columns.filter((c) => c !== undefined);
    for (let sweep = 0; sweep < 4; sweep++) {
      const pos = new Map<string, number>();
      for (const col of cols) for (const [i, v] of col.entries()) pos.set(v, i / Math.max(1, col.length));
      for (const [ci, col] of cols.entries()) {
        const neighbourCol = new Set(cols[sweep % 2 === 0 ? ci - 1 : ci + 1] ?? []);
        const bary = new Map<string, number>();
        for (const [i, v] of col.entries()) {
          const near = (undirected.get(v) ?? []).filter((w) => neighbourCol.has(w));
          bary.set(
            v,
            near.length === 0
              ? i / Math.max(1, col.length)
              : near.reduce((s, w) => s + (pos.get(w) ?? 0), 0) / near.length,
          );
        }
        col.sort((a, b) => (bary.get(a) ?? 0) - (bary.get(b) ?? 0));
      }
    }
    // Along: the axis layers follow; across: the axis states of one layer are stacked on.
    const along = (s: Size) => (vertical ? s.h : s.w);
    const across = (s: Size) => (vertical ? s.w : s.h);
    const layerGap = vertical ? ROW_GAP * 2.5 : COL_GAP;
    const stackGap = vertical ? COL_GAP / 2 : ROW_GAP;
    const extents = cols.map(
      (col) => col.reduce((t, v) => t + across(size.get(v) as Size), 0) + (col.length - 1) * stackGap,
    );
    const breadth = Math.max(0, ...extents);
    let a = 0;
    for (const [ci, col] of cols.entries()) {
      const layerDepth = Math.max(...col.map((v) => along(size.get(v) as Size)));
      let c = (breadth - (extents[ci] ?? 0)) / 2;
      for (const v of col) {
        const s = size.get(v) as Size;
        const offset = (layerDepth - along(s)) / 2;
        rel.set(v, vertical ? { x: c, y: a + offset } : { x: a + offset, y: c });
        c += across(s) + stackGap;
      }
      a += layerDepth + layerGap;
    }
    const length = Math.max(0, a - layerGap);
    return vertical ? { w: breadth, h: length } : { w: length, h: breadth };
  };

  measure(graph.root, 0);
  rel.set(graph.root.id, { x: 0, y: 0 });
  const boxes: Box[] = [];
  const boxOf = new Map<string, Box>();
  const place = (node: GraphNode, ox: number, oy: number, depth: number) => {
    const r = rel.get(node.id) ?? { x: 0, y: 0 };
    const s = size.get(node.id) as Size;
    const box: Box = { id: node.id, node, x: ox + r.x, y: oy + r.y, w: s.w, h: s.h, depth };
    boxes.push(box);
    boxOf.set(node.id, box);
    for (const c of node.children) place(c, box.x + PAD, box.y + HEADER, depth + 1);
  };
  place(graph.root, MARGIN, MARGIN, 0);

  const grouped = new Map<string, GraphEdge[]>();
  for (const e of graph.edges) {
    if (!boxOf.has(e.source) || !boxOf.has(e.target)) continue;
    const key = `${e.source}\u0000${e.target}`;
    const list = grouped.get(key) ?? [];
    list.push(e);
    grouped.set(key, list);
  }
  const edges: EdgePath[] = [];
  for (const list of grouped.values()) {
    const first = list[0] as GraphEdge;
    const s = boxOf.get(first.source) as Box;
    const t = boxOf.get(first.target) as Box;
    const labels = [...new Set(list.map(edgeLabel))];
    edges.push({
      id: `p${edges.length}`,
      source: s.id,
      target: t.id,
      labels,
      edges: list,
      ...route(s, t),
    });
  }
  const root = boxOf.get(graph.root.id) as Box;
  const extent = edges.reduce(
    (m, e) => ({
      w: Math.max(m.w, e.lx + Math.max(...e.labels.map((l) => l.length)) * 6),
      h: Math.max(m.h, e.ly + e.labels.length * 12 + 40),
    }),
    { w: root.x + root.w, h: root.y + root.h },
  );
  return { width: Math.ceil(extent.w + MARGIN), height: Math.ceil(extent.h + MARGIN), boxes, edges };
}

function contains(a: Box, b: Box): boolean {
  return b.x >= a.x && b.y >= a.y && b.x + b.w <= a.x + a.w && b.y + b.h <= a.y + a.h;
}

/** A cubic Bézier from one box's border to the other's, and the curve's midpoint for the label. */
function route(s: Box, t: Box): { d: string; lx: number; ly: number } {
  let p0: [number, number];
  let p1: [number, number];
  let p2: [number, number];
  let p3: [number, number];
  const scy = s.y + Math.min(s.h / 2, 15);
  const tcy = t.y + Math.min(t.h / 2, 15);
  // The gap between the boxes on each axis (negative when they overlap on it) picks the route.
  const gapX = Math.max(t.x - (s.x + s.w), s.x - (t.x + t.w));
  const gapY = Math.max(t.y - (s.y + s.h), s.y - (t.y + t.h));
  if (s === t) {
    // A self-transition: a loop over the top right corner.
    p0 = [s.x + s.w - 24, s.y];
    p3 = [s.x + s.w, s.y + 12];
    p1 = [p0[0], s.y - 40];
    p2 = [s.x + s.w + 40, p3[1]];
  } else if (contains(s, t) || contains(t, s)) {
    p0 = [s.x + s.w, scy];
    p3 = [t.x + t.w, tcy];
    p1 = [p0[0] + 50, p0[1]];
    p2 = [p3[0] + 50, p3[1]];
  } else if (gapX >= gapY && t.x >= s.x + s.w) {
    p0 = [s.x + s.w, scy];
    p3 = [t.x, tcy];
    const dx = Math.max(30, (p3[0] - p0[0]) / 2);
    p1 = [p0[0] + dx, p0[1]];
    p2 = [p3[0] - dx, p3[1]];
  } else if (gapX >= gapY) {
    // Backwards to the left: an arch under both states.
    p0 = [s.x + s.w / 2, s.y + s.h];
    p3 = [t.x + t.w / 2, t.y + t.h];
    const below = Math.max(p0[1], p3[1]) + 36;
    p1 = [p0[0], below];
    p2 = [p3[0], below];
  } else if (t.y >= s.y + s.h) {
    p0 = [s.x + s.w / 2, s.y + s.h];
    p3 = [t.x + t.w / 2, t.y];
    const dy = Math.max(20, (p3[1] - p0[1]) / 2);
    p1 = [p0[0], p0[1] + dy];
    p2 = [p3[0], p3[1] - dy];
  } else {
    // Backwards upwards: an arch right of both states.
    p0 = [s.x + s.w, scy];
    p3 = [t.x + t.w, tcy];
    const right = Math.max(p0[0], p3[0]) + 40;
    p1 = [right, p0[1]];
    p2 = [right, p3[1]];
  }
  const n = (v: number) => Math.round(v * 10) / 10;
  const d = `M${n(p0[0])},${n(p0[1])} C${n(p1[0])},${n(p1[1])} ${n(p2[0])},${n(p2[1])} ${n(p3[0])},${n(p3[1])}`;
  const lx = (p0[0] + 3 * p1[0] + 3 * p2[0] + p3[0]) / 8;
  const ly = (p0[1] + 3 * p1[1] + 3 * p2[1] + p3[1]) / 8;
  return { d, lx: n(lx), ly: n(ly) };
}
