/**
 * Runs tasks one at a time, in submission order. A PKCS#11 session must not be used by two
 * operations at once (e.g. C_FindObjectsInit..Final of one request interleaving with another's),
 * and once calls move off the event loop they really would interleave.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();

  run<T>(task: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    // The chain continues whether the task succeeded or not.
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
