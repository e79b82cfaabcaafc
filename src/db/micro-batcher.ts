/**
 * Groups concurrent calls into batches: the first call runs at once (no timer, no added latency when traffic is
 * light); calls arriving while a batch is in flight wait and go together in the next one. Under load, one database
 * transaction then serves many requests, which is how metering keeps up with the traffic on one hot row.
 *
 * `run` returns one result per item, in order: a value, or an Error that rejects only that item's promise.
 * A thrown error rejects every item of the batch.
 */
export class MicroBatcher<I, O> {
  private queue: Array<{ item: I; resolve: (value: O) => void; reject: (err: unknown) => void }> = [];
  private running = 0;

  constructor(
    private readonly run: (items: I[]) => Promise<Array<O | Error>>,
    private readonly options: { maxBatch: number; maxConcurrent: number },
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.options.maxConcurrent && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.running++;
      this.run(batch.map((b) => b.item))
        .then(
          (results) => batch.forEach((b, i) => (results[i] instanceof Error ? b.reject(results[i]) : b.resolve(results[i] as O))),
          (err: unknown) => batch.forEach((b) => b.reject(err)),
        )
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }
}
