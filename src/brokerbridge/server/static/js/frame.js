// DOM writes batched per animation frame: events only update models and `schedule` a render under
// a key; however many events arrive for that key before the next frame, it renders once.

export class FrameScheduler {
  constructor() {
    this.pending = new Map();
    this.requested = false;
    this.flush = this.flush.bind(this);
  }

  /** Run `render` in the next animation frame; a later call with the same key replaces it. */
  schedule(key, render) {
    this.pending.set(key, render);
    if (!this.requested) {
      this.requested = true;
      requestAnimationFrame(this.flush);
    }
  }

  /** Forget pending renders whose key starts with `prefix` (a page that unmounted). */
  cancel(prefix) {
    for (const key of this.pending.keys()) if (key.startsWith(prefix)) this.pending.delete(key);
  }

  flush() {
    this.requested = false;
    const batch = this.pending;
    this.pending = new Map();
    for (const render of batch.values()) {
      try {
        render();
      } catch (error) {
        console.error("render failed", error); // a bug: report it, keep rendering the rest
      }
    }
  }
}
