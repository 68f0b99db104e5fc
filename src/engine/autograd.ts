// Reverse-mode autograd: a tape of Nodes built as ops run, walked backwards by backward().
//
// Each op records one Node with its backward rule (a closure over the tensors it saved). Gradients flow to parent
// nodes, or accumulate into `.grad` of leaf tensors that require grad. Inputs that do not require grad (frozen
// weights) are reported to the rule as not needed, so it skips their products entirely.
//
// Lifetime: a Node is reference-counted (its output tensor + each child node). Saved tensors are released right
// after the node's backward ran (unless retainGraph) or when nothing can reach the node any more.

import { isGradEnabled, noGrad, untrack } from './context.js';
import { Tensor } from './tensor.js';

/** Computes input gradients from the output gradient; entries for inputs with needs[i] false may be null. */
export type BackwardRule = (gout: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

export class Node {
  private refs = 1;
  private saved: Tensor[];
  private rule: BackwardRule | null;
  readonly parents: (Node | null)[];

  constructor(
    readonly op: string,
    readonly inputs: readonly Tensor[],
    saved: readonly Tensor[],
    rule: BackwardRule,
  ) {
    // Saved tensors get their own handles on the storage, outside any scope, so disposing the originals
    // (for example at the end of a tidy) leaves backward able to run.
    this.saved = saved.map((t) => t.view(t.shape, t.strides, t.offset).keep());
    this.rule = rule;
    this.parents = inputs.map((t) => t.node);
    for (const p of this.parents) p?.retain();
  }

  /** Saved tensor i (in the order given to record()). */
  get(i: number): Tensor {
    const t = this.saved[i];
    if (t === undefined) throw new Error(`${this.op}: backward through a graph whose saved tensors were freed (use retainGraph)`);
    return t;
  }

  retain(): void {
    this.refs++;
  }

  /** Called when the output tensor is disposed. */
  releaseOutput(): void {
    this.decRef();
  }

  private decRef(): void {
    if (--this.refs > 0) return;
    this.freeSaved();
    this.rule = null;
    for (const p of this.parents) p?.decRef();
    this.parents.fill(null);
  }

  freeSaved(): void {
    for (const t of this.saved) t.dispose();
    this.saved = [];
  }

  run(gout: Tensor, needs: readonly boolean[]): (Tensor | null)[] {
    if (this.rule === null) throw new Error(`${this.op}: its graph was released`);
    return this.rule(gout, needs);
  }
}

/**
 * Records an op on the tape if gradients are enabled and any input requires grad. `saved` are the tensors the
 * rule reads (inputs or outputs); the rule receives them through node.get(i).
 */
export function record(op: string, out: Tensor, inputs: readonly Tensor[], saved: readonly Tensor[], rule: (node: Node, gout: Tensor, needs: readonly boolean[]) => (Tensor | null)[]): Tensor {
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return out;
  const node: Node = new Node(op, inputs, saved, (g, needs) => rule(node, g, needs));
  out.node = node;
  out.requiresGrad = true;
  return out;
}

function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  // Iterative DFS (deep graphs: a 30-layer model has thousands of nodes).
  const stack: [Node, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.parents.length) {
      top[1] = i + 1;
      const p = node.parents[i];
      if (p && !seen.has(p)) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      order.push(node);
      stack.pop();
    }
  }
  return order.reverse(); // root first
}

function swapForContiguous(g: Tensor): Tensor {
  const c = g.contiguousCopy();
  g.dispose();
  return c;
}

/**
 * acc + g, reusing acc's buffer when it is contiguous and not shared (rules may hand the same buffer to two
 * inputs, as add does); consumes g (and acc when it must copy).
 */
function accumulate(acc: Tensor, g: Tensor): Tensor {
  const a = acc.isContiguous && acc.storage.exclusive ? acc : swapForContiguous(acc);
  const b = g.isContiguous ? g : g.contiguousCopy();
  a.backend.axpy(1, b.data, a.data, a.size);
  if (b !== g) b.dispose();
  g.dispose();
  return a;
}

export interface BackwardOptions {
  /** gradient of the root (defaults to ones; required shape = root's shape) */
  grad?: Tensor;
  /** keep saved tensors so backward can run again through the same graph */
  retainGraph?: boolean;
}

/** Backpropagates from root, accumulating into `.grad` of every leaf tensor that requires grad. */
export function backward(root: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error(`backward(): ${root.label()} does not require grad (no input needed a gradient)`);
  noGrad(() => {
    const seed = opts.grad ?? Tensor.full(root.shape, 1, root.backend);
    if (root.node === null) {
      accumulateLeaf(root, seed === opts.grad ? seed.contiguousCopy() : seed);
      return;
    }
    const grads = new Map<Node, Tensor>();
    grads.set(root.node, seed === opts.grad ? seed.contiguousCopy() : seed);
    for (const node of topoOrder(root.node)) {
      let g = grads.get(node);
      if (g === undefined) continue;
      grads.delete(node);
      // Rules read contiguous gradients, except transpose's, which only swaps strides back: this lets a
      // transposed product's gradient reach a weight without ever being copied into a transposed layout.
      if (!g.isContiguous && node.op !== 'transpose') g = swapForContiguous(g);
      const needs = node.inputs.map((t) => t.requiresGrad);
      const ins = node.run(g, needs);
      g.dispose();
      if (!opts.retainGraph) node.freeSaved();
      ins.forEach((gi, i) => {
        if (gi === null) return;
        const parent = node.parents[i];
        if (!needs[i]) gi.dispose();
        else if (parent) {
          const acc = grads.get(parent);
          if (acc === undefined) grads.set(parent, gi);
          else grads.set(parent, accumulate(acc, gi));
        } else accumulateLeaf(node.inputs[i], gi);
      });
    }
    for (const g of grads.values()) g.dispose();
  });
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.disposed) {
    g.dispose();
    return;
  }
  if (leaf.grad === null) {
    const c = g.isContiguous ? g : swapForContiguous(g);
    untrack(c);
    leaf.grad = c;
  } else {
    // accumulate may return a fresh copy (when the old gradient was a shared view): keep it out of scopes.
    leaf.grad = accumulate(leaf.grad, g);
    untrack(leaf.grad);
  }
}
