interface Slot {
  readonly at: number;
  readonly key: string;
}

/**
 * A binary min-heap of expiry times by key. Overwritten and deleted entries are not removed from it; the sweep
 * skips slots whose time no longer matches the entry, which keeps writes O(log n). A slot holds only the key, so
 * the heap's memory is bounded by writes per TTL, never by the values.
 */
export class ExpiryHeap {
  #slots: Slot[] = [];

  get size(): number {
    return this.#slots.length;
  }

  push(at: number, key: string): void {
    const slots = this.#slots;
    slots.push({ at, key });
    let i = slots.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (slots[parent]!.at <= slots[i]!.at) break;
      [slots[parent], slots[i]] = [slots[i]!, slots[parent]!];
      i = parent;
    }
  }

  /** Removes and returns every slot whose time is at or before `now`. */
  popExpired(now: number): Slot[] {
    const out: Slot[] = [];
    while (this.#slots.length > 0 && this.#slots[0]!.at <= now) out.push(this.#pop());
    return out;
  }

  clear(): void {
    this.#slots = [];
  }

  #pop(): Slot {
    const slots = this.#slots;
    const top = slots[0]!;
    const last = slots.pop()!;
    if (slots.length > 0) {
      slots[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < slots.length && slots[left]!.at < slots[smallest]!.at) smallest = left;
        if (right < slots.length && slots[right]!.at < slots[smallest]!.at) smallest = right;
        if (smallest === i) break;
        [slots[smallest], slots[i]] = [slots[i]!, slots[smallest]!];
        i = smallest;
      }
    }
    return top;
  }
}
