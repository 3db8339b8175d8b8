export interface AwsKmsKeyUri {
  /** The key or alias ARN, as KMS takes it for KeyId. */
  readonly arn: string;
  readonly region: string;
  readonly kind: 'key' | 'alias';
}

// arn:PARTITION:kms:REGION:ACCOUNT:key/ID or alias/NAME; partitions include aws, aws-us-gov and aws-cn.
const KMS_ARN = /^arn:(aws[a-z-]*):kms:([a-z]{2}(?:-[a-z]+)+-\d+):(\d{12}):(key|alias)\/([A-Za-z0-9/_-]+)$/;

/**
 * Parses a Tink-style AWS KMS key URI, `aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID` or an alias ARN. Only full
 * ARNs: they carry the region and account, so one URI names one key wherever it is read. A bad URI is the
 * caller's mistake, so it is a TypeError, and it does not echo the URI back.
 */
export function parseAwsKmsUri(uri: string): AwsKmsKeyUri {
  const prefix = 'aws-kms://';
  const arn = uri.startsWith(prefix) ? uri.slice(prefix.length) : '';
  const match = KMS_ARN.exec(arn);
  if (match === null) {
    throw new TypeError(
      'an AWS KMS key URI is aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID or aws-kms://arn:aws:kms:REGION:ACCOUNT:alias/NAME',
    );
  }
  const region = match[2]!;
  const kind = match[4] === 'alias' ? 'alias' : 'key';
  return { arn, region, kind };
}

/** Whether a kid is a KMS key ARN (not an alias): what this provider records on every data key it wraps. */
export function isAwsKmsKeyArn(kid: string): boolean {
  return KMS_ARN.exec(kid)?.[4] === 'key';
}
