// Draws a laid-out statechart as SVG and highlights the states an actor is in.
import type { MachineGraph } from './graph.ts';
import { type GraphLayout, layoutGraph } from './layout.ts';

const SVG = 'http://www.w3.org/2000/svg';

function el<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  parent?: Element,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent?.appendChild(e);
  return e;
}

/** A drawn machine: `highlight(ids)` marks the active states, the deepest one as current. */
export interface DrawnGraph {
  svg: SVGSVGElement;
  layout: GraphLayout;
  highlight(activeIds: readonly string[]): void;
  setZoom(zoom: number): void;
}

export function drawGraph(graph: MachineGraph): DrawnGraph {
  const layout = layoutGraph(graph);
  const svg = el('svg', {
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    class: 'statechart',
    role: 'img',
    'aria-label': `statechart of ${graph.title}`,
  });
  const defs = el('defs', {}, svg);
  const marker = el(
    'marker',
    {
      id: 'arrow',
      viewBox: '0 0 10 10',
      refX: 9,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: 'auto-start-reverse',
    },
    defs,
  );
  el('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }, marker);
  const groups = new Map<string, SVGGElement>();
  const states = el('g', { class: 'states' }, svg);
  for (const box of layout.boxes) {
    const g = el(
      'g',
      { class: `state ${box.node.type}`, 'data-id': box.id, 'data-depth': box.depth },
      states,
    );
    const title = el('title', {}, g);
    title.textContent = box.node.description === undefined ? box.id : `${box.id} — ${box.node.description}`;
    el(
      'rect',
      { x: box.x, y: box.y, width: box.w, height: box.h, rx: box.node.type === 'history' ? 15 : 8 },
      g,
    );
    if (box.node.type === 'final')
      el(
        'rect',
        { x: box.x + 3, y: box.y + 3, width: box.w - 6, height: box.h - 6, rx: 6, class: 'inner' },
        g,
      );
    const leaf = box.node.children.length === 0;
    const label = el(
      'text',
      {
        x: box.x + (leaf ? box.w / 2 : 10),
        y: box.y + (leaf ? box.h / 2 + 4 : 16),
        class: leaf ? 'leaf' : 'head',
      },
      g,
    );
    label.textContent = box.node.type === 'history' ? 'H*' : box.node.key;
    groups.set(box.id, g);
    // The initial child is marked with a small dot and arrow, as statecharts draw it.
    if (box.node.initial !== undefined) {
      const child = layout.boxes.find((b) => b.id === box.node.initial);
      if (child !== undefined) {
        el('circle', { cx: child.x - 14, cy: child.y + 10, r: 4, class: 'initial' }, g);
        el(
          'path',
          {
            d: `M${child.x - 10},${child.y + 10} L${child.x - 1},${child.y + 10}`,
            class: 'initial-arrow',
            'marker-end': 'url(#arrow)',
          },
          g,
        );
      }
    }
  }
  const edgeLayer = el('g', { class: 'edges' }, svg);
  for (const e of layout.edges) {
    const g = el('g', { class: 'edge', 'data-source': e.source, 'data-target': e.target }, edgeLayer);
    el('path', { d: e.d, 'marker-end': 'url(#arrow)' }, g);
    const hint = el('title', {}, g);
    hint.textContent = e.labels.join('\n');
    const text = el('text', { x: e.lx, y: e.ly - (e.labels.length - 1) * 6 }, g);
    for (const [i, line] of e.labels.entries()) {
      const span = el('tspan', { x: e.lx, dy: i === 0 ? 0 : 12 }, text);
      span.textContent = line;
    }
  }
  let active: string[] = [];
  let scale = 1;
  /** Scrolls the drawing's container so the innermost current state is in view. */
  const reveal = (id: string) => {
    const box = layout.boxes.find((b) => b.id === id);
    const view = svg.parentElement;
    if (box === undefined || view === null) return;
    const [x, y, w, hgt] = [box.x * scale, box.y * scale, box.w * scale, box.h * scale];
    if (x < view.scrollLeft || x + w > view.scrollLeft + view.clientWidth)
      view.scrollLeft = Math.max(0, x - view.clientWidth / 3);
    if (y < view.scrollTop || y + hgt > view.scrollTop + view.clientHeight)
      view.scrollTop = Math.max(0, y - view.clientHeight / 3);
  };
  return {
    svg,
    layout,
    highlight(ids) {
      for (const id of active) groups.get(id)?.classList.remove('active', 'current');
      active = ids.filter((id) => groups.has(id));
      for (const id of active) groups.get(id)?.classList.add('active');
      // Current: active states none of whose children is active (the leaves of the configuration).
      const set = new Set(active);
      for (const id of active) {
        const box = layout.boxes.find((b) => b.id === id);
        if (box !== undefined && !box.node.children.some((c) => set.has(c.id))) {
          groups.get(id)?.classList.add('current');
          reveal(id);
        }
      }
      const edges = edgeLayer.querySelectorAll<SVGGElement>('g.edge');
      for (const g of Array.from(edges)) g.classList.toggle('live', set.has(g.dataset['source'] ?? ''));
    },
    setZoom(zoom) {
      scale = zoom;
      svg.setAttribute('width', String(Math.round(layout.width * zoom)));
      svg.setAttribute('height', String(Math.round(layout.height * zoom)));
    },
  };
}
