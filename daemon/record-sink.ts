// Where the pipeline, the trials and the operator's commands write their records: the audit
// log, or a test's sink. append never throws and returns the sealed record's seq and hash.
export interface RecordSink {
  append(fields: { kind: string } & Record<string, unknown>): { seq: number; hash: string };
}
