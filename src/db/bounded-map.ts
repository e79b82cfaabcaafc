/**
 * A Map that keeps at most `maxEntries`: storing a key makes it the newest, and storing past the bound drops the
 * oldest. For what an instance remembers to skip a query (rows, key identities, catalog entries), never for what it
 * must not forget.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly maxEntries: number) {
    super();
  }

  override set(key: K, value: V): this {
    this.delete(key);
    super.set(key, value);
    if (this.size > this.maxEntries) this.delete(this.keys().next().value!);
    return this;
  }
}
