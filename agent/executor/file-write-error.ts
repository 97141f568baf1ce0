/** A plan file could not be written; the message names the path, never the content. `reason` is the stable code for the status. */
export class FileWriteError extends Error {
  override readonly name = "FileWriteError";
  readonly reason: string;
  constructor(message: string, options?: { cause?: unknown; reason?: string }) {
    super(message, options);
    this.reason = options?.reason ?? "file_write_failed";
  }
}
