// The deployment's settings: the CDK counterpart of template.yaml's parameters, read from the
// CDK context and checked here, so a typo fails `cdk synth` instead of a deploy.
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type ChannelMode = 'sandbox' | 'live';

export interface Settings {
  /** Part of every resource and secret name: [a-z0-9-]{1,20}. */
  readonly stage: string;
  readonly logLevel: LogLevel;
  readonly logRetentionDays: RetentionDays;
  /** Where alarms and ChannelStopped events are e-mailed; none: the topic has no subscriber. */
  readonly alarmEmail?: string;
  readonly graphApiVersion: string;
  readonly smsOriginationIdentity: string;
  readonly emailFrom: string;
  readonly channelMode: ChannelMode;
  readonly sendRatePerSecond: number;
  readonly stripeSuccessUrl: string;
  readonly stripeCancelUrl: string;
  /** Stripe's partner event bus; none: no Stripe rule. */
  readonly stripeEventBusName?: string;
  /** EventBridge Scheduler expression of the reminders tick. */
  readonly reminderRate: string;
  readonly apiRateLimit: number;
  readonly apiBurstLimit: number;
}

/** template.yaml's defaults. */
export const DEFAULTS: Settings = {
  stage: 'dev',
  logLevel: 'info',
  logRetentionDays: RetentionDays.ONE_MONTH,
  graphApiVersion: 'v25.0',
  smsOriginationIdentity: '',
  emailFrom: '',
  channelMode: 'sandbox',
  sendRatePerSecond: 80,
  stripeSuccessUrl: '',
  stripeCancelUrl: '',
  reminderRate: 'rate(5 minutes)',
  apiRateLimit: 500,
  apiBurstLimit: 1000,
};

const LOG_LEVELS: readonly string[] = ['error', 'warn', 'info', 'debug', 'trace'];

/** Settings from context values (strings on the command line, any JSON type in cdk.json). */
export function settingsFromContext(get: (key: string) => unknown): Settings {
  const str = (key: keyof Settings, fallback: string): string => {
    const v = get(key);
    return v === undefined || v === null ? fallback : String(v);
  };
  const num = (key: keyof Settings, fallback: number, min: number, max: number): number => {
    const raw = str(key, String(fallback));
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error(`context ${key}: expected an integer in ${min}..${max}, got "${raw}"`);
    }
    return n;
  };
  const optional = (key: keyof Settings): string | undefined => {
    const v = str(key, '');
    return v === '' ? undefined : v;
  };

  const stage = str('stage', DEFAULTS.stage);
  if (!/^[a-z0-9-]{1,20}$/.test(stage)) {
    throw new Error(`context stage: expected [a-z0-9-]{1,20}, got "${stage}"`);
  }
  const logLevel = str('logLevel', DEFAULTS.logLevel);
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new Error(`context logLevel: expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const logRetentionDays = num('logRetentionDays', DEFAULTS.logRetentionDays, 1, 3653);
  if (!(Object.values(RetentionDays) as number[]).includes(logRetentionDays)) {
    throw new Error(`context logRetentionDays: ${logRetentionDays} is not a CloudWatch Logs retention`);
  }
  const alarmEmail = optional('alarmEmail');
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+$/.test(alarmEmail)) {
    throw new Error(`context alarmEmail: not an e-mail address: "${alarmEmail}"`);
  }
  const graphApiVersion = str('graphApiVersion', DEFAULTS.graphApiVersion);
  if (!/^v[0-9]+\.[0-9]+$/.test(graphApiVersion)) {
    throw new Error(`context graphApiVersion: expected like v25.0, got "${graphApiVersion}"`);
  }
  const channelMode = str('channelMode', DEFAULTS.channelMode);
  if (channelMode !== 'sandbox' && channelMode !== 'live') {
    throw new Error(`context channelMode: expected sandbox or live, got "${channelMode}"`);
  }
  return {
    stage,
    logLevel: logLevel as LogLevel,
    logRetentionDays: logRetentionDays as RetentionDays,
    alarmEmail,
    graphApiVersion,
    smsOriginationIdentity: str('smsOriginationIdentity', DEFAULTS.smsOriginationIdentity),
    emailFrom: str('emailFrom', DEFAULTS.emailFrom),
    channelMode,
    sendRatePerSecond: num('sendRatePerSecond', DEFAULTS.sendRatePerSecond, 1, 1000),
    stripeSuccessUrl: str('stripeSuccessUrl', DEFAULTS.stripeSuccessUrl),
    stripeCancelUrl: str('stripeCancelUrl', DEFAULTS.stripeCancelUrl),
    stripeEventBusName: optional('stripeEventBusName'),
    reminderRate: str('reminderRate', DEFAULTS.reminderRate),
    apiRateLimit: num('apiRateLimit', DEFAULTS.apiRateLimit, 1, 10000),
    apiBurstLimit: num('apiBurstLimit', DEFAULTS.apiBurstLimit, 1, 5000),
  };
}
