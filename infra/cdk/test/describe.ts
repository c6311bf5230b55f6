// Describes a template as the system it deploys, in terms both template.yaml (SAM, before its
// transform) and the CDK app's synthesized template can be reduced to: names instead of logical
// ids, the function behind each event, the actions each function's role allows.
import type { Template } from './cfn-yaml';

type Resource = Template['Resources'][string];

/** The data-plane actions a function's role is compared on (logging, X-Ray, polling excluded). */
const DATA_ACTION = /^(dynamodb|s3|secretsmanager|sms-voice|ses):|^sqs:SendMessage$|^events:PutEvents$/;

/** SAM policy templates used in template.yaml, by the data actions they grant. */
const SAM_POLICY_TEMPLATES: Record<string, string[]> = {
  SQSSendMessagePolicy: ['sqs:SendMessage'],
  EventBridgePutEventsPolicy: ['events:PutEvents'],
};

const NAME_PROPERTIES = ['FunctionName', 'QueueName', 'TopicName', 'TableName', 'LogGroupName', 'AlarmName', 'Name'];

export interface System {
  functions: Record<string, unknown>;
  table: unknown;
  queues: Record<string, unknown>;
  buses: string[];
  schedules: Record<string, unknown>;
  rules: string[];
  alarms: Record<string, unknown>;
  logGroups: Record<string, unknown>;
  routes: Record<string, string>;
  eventSources: string[];
  asyncInvoke: string[];
  secrets: string[];
  topics: Record<string, unknown>;
  buckets: unknown[];
  /** Who may use each KMS key besides the account, with which conditions. */
  keyGrants: string[];
  /** Which services may publish to which topic, with which condition keys. */
  topicGrants: string[];
  /** Which services may send to which queue, with which condition keys. */
  queueGrants: string[];
  /** The HTTP API's stage: name, throttling, access log destination and format. */
  api: unknown[];
}

/** JSON with sorted keys: equal values, equal strings. */
export function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export class Describer {
  constructor(private readonly t: Template) {}

  private name(id: string): string {
    const r = this.t.Resources[id];
    if (!r) return `?${id}`;
    // There is one HTTP API; SAM's has no name property.
    if (r.Type === 'AWS::Serverless::HttpApi' || r.Type === 'AWS::ApiGatewayV2::Api') return 'http-api';
    for (const p of NAME_PROPERTIES) {
      if (r.Properties?.[p] !== undefined) return this.value(r.Properties[p]);
    }
    return `?${id}`;
  }

  /** A value with parameters at their defaults and resources by their names. */
  value(v: any): string {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (v && typeof v === 'object') {
      if ('Ref' in v) {
        const p = this.t.Parameters?.[v.Ref];
        if (p) return String(p.Default ?? '');
        return v.Ref.startsWith('AWS::') ? `{${v.Ref}}` : this.name(v.Ref);
      }
      if ('Fn::GetAtt' in v) {
        const [id, attr] = v['Fn::GetAtt'];
        return attr === 'QueueName' || attr === 'TopicName' ? this.name(id) : `${this.name(id)}.${attr}`;
      }
      if ('Fn::Sub' in v) {
        const s: string = Array.isArray(v['Fn::Sub']) ? v['Fn::Sub'][0] : v['Fn::Sub'];
        return s.replace(/\$\{([^}]+)\}/g, (_, ref: string) =>
          ref.includes('.') ? this.value({ 'Fn::GetAtt': [ref.slice(0, ref.indexOf('.')), ref.slice(ref.indexOf('.') + 1)] }) : this.value({ Ref: ref }),
        );
      }
      if ('Fn::Join' in v) return v['Fn::Join'][1].map((p: unknown) => this.value(p)).join(v['Fn::Join'][0]);
    }
    return stable(v);
  }

  private of(type: string): [string, Resource][] {
    return Object.entries(this.t.Resources).filter(([, r]) => r.Type === type && !r.Condition);
  }

  describe(): System {
    const sys: System = {
      functions: {},
      table: undefined,
      queues: {},
      buses: [],
      schedules: {},
      rules: [],
      alarms: {},
      logGroups: {},
      routes: {},
      eventSources: [],
      asyncInvoke: [],
      secrets: [],
      topics: {},
      buckets: [],
      keyGrants: [],
      topicGrants: [],
      queueGrants: [],
      api: [],
    };
    this.samFunctions(sys);
    this.lambdaFunctions(sys);

    for (const [, r] of this.of('AWS::DynamoDB::Table')) {
      const p = r.Properties;
      sys.table = {
        name: this.value(p.TableName),
        billing: p.BillingMode,
        keys: p.KeySchema,
        attributes: [...p.AttributeDefinitions].sort((a: any, b: any) => a.AttributeName.localeCompare(b.AttributeName)),
        indexes: [...(p.GlobalSecondaryIndexes ?? [])].sort((a: any, b: any) => a.IndexName.localeCompare(b.IndexName)),
        ttl: p.TimeToLiveSpecification,
        pitr: p.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled === true,
        deletionProtection: p.DeletionProtectionEnabled === true,
        sse: p.SSESpecification?.SSEEnabled === true,
        retained: r.Properties && (r as any).DeletionPolicy === 'Retain',
      };
    }
    for (const [, r] of this.of('AWS::SQS::Queue')) {
      const p = r.Properties;
      sys.queues[this.value(p.QueueName)] = {
        visibility: p.VisibilityTimeout ?? 30,
        retention: p.MessageRetentionPeriod ?? 345600,
        sse: p.SqsManagedSseEnabled === true,
        deadLetters: p.RedrivePolicy ? `${this.value(p.RedrivePolicy.deadLetterTargetArn)} after ${p.RedrivePolicy.maxReceiveCount}` : null,
      };
    }
    sys.buses = this.of('AWS::Events::EventBus').map(([, r]) => this.value(r.Properties.Name)).sort();
    for (const [, r] of this.of('AWS::Scheduler::Schedule')) {
      const p = r.Properties;
      sys.schedules[this.value(p.Name)] = {
        expression: this.value(p.ScheduleExpression),
        target: this.value(p.Target.Arn),
        retry: p.Target.RetryPolicy,
        deadLetters: this.value(p.Target.DeadLetterConfig?.Arn),
      };
    }
    for (const [, r] of this.of('AWS::Events::Rule')) {
      for (const target of r.Properties.Targets) {
        sys.rules.push(this.rule(r.Properties.EventBusName, r.Properties.EventPattern, target.Arn, target.RetryPolicy, target.DeadLetterConfig?.Arn));
      }
    }
    for (const [, r] of this.of('AWS::CloudWatch::Alarm')) {
      const p = r.Properties;
      sys.alarms[this.value(p.AlarmName)] = {
        metric: `${p.Namespace}/${p.MetricName}`,
        dimensions: (p.Dimensions ?? []).map((d: any) => `${d.Name}=${this.value(d.Value)}`).sort(),
        statistic: p.Statistic,
        period: p.Period,
        evaluationPeriods: p.EvaluationPeriods,
        threshold: p.Threshold,
        comparison: p.ComparisonOperator,
        missingData: p.TreatMissingData,
        alarmActions: (p.AlarmActions ?? []).map((a: unknown) => this.value(a)),
        okActions: (p.OKActions ?? []).map((a: unknown) => this.value(a)),
      };
    }
    for (const [, r] of this.of('AWS::Logs::LogGroup')) {
      sys.logGroups[this.value(r.Properties.LogGroupName)] = Number(this.value(r.Properties.RetentionInDays));
    }
    for (const [, r] of this.of('AWS::ApiGatewayV2::Route')) {
      const integration = this.t.Resources[r.Properties.Target['Fn::Join'][1][1].Ref];
      sys.routes[r.Properties.RouteKey] = this.value(integration.Properties.IntegrationUri).replace(/\.Arn$/, '');
    }
    for (const [, r] of this.of('AWS::Lambda::EventSourceMapping')) {
      const p = r.Properties;
      sys.eventSources.push(
        stable({
          queue: this.value(p.EventSourceArn),
          function: this.value(p.FunctionName),
          batchSize: p.BatchSize ?? 10,
          window: p.MaximumBatchingWindowInSeconds ?? 0,
          responseTypes: p.FunctionResponseTypes ?? [],
          maxConcurrency: p.ScalingConfig?.MaximumConcurrency ?? null,
        }),
      );
    }
    for (const [, r] of this.of('AWS::Lambda::EventInvokeConfig')) {
      const p = r.Properties;
      sys.asyncInvoke.push(
        stable({ function: this.value(p.FunctionName), retries: p.MaximumRetryAttempts, onFailure: this.value(p.DestinationConfig?.OnFailure?.Destination) }),
      );
    }
    sys.secrets = this.of('AWS::SecretsManager::Secret').map(([, r]) => stable({ name: this.value(r.Properties.Name), generate: r.Properties.GenerateSecretString }));
    for (const [, r] of this.of('AWS::SNS::Topic')) {
      sys.topics[this.value(r.Properties.TopicName)] = { encrypted: r.Properties.KmsMasterKeyId !== undefined };
    }
    sys.buckets = this.of('AWS::S3::Bucket').map(([, r]) => ({
      encryption: r.Properties.BucketEncryption,
      publicAccessBlock: r.Properties.PublicAccessBlockConfiguration,
      versioning: r.Properties.VersioningConfiguration,
      lifecycle: [...r.Properties.LifecycleConfiguration.Rules].map((rule: any) => stable(rule)).sort(),
    }));
    for (const [, r] of this.of('AWS::KMS::Key')) {
      for (const s of r.Properties.KeyPolicy.Statement) {
        // One entry per service, duplicates dropped: CDK adds its own grant for EventBridge.
        for (const service of [s.Principal?.Service ?? []].flat()) {
          const grant = stable({
            service,
            actions: [s.Action].flat().sort(),
            conditions: Object.fromEntries(
              Object.entries<Record<string, unknown>>(s.Condition ?? {}).map(([op, c]) => [op, Object.keys(c).sort()]),
            ),
          });
          if (!sys.keyGrants.includes(grant)) sys.keyGrants.push(grant);
        }
      }
    }
    const grants = (type: string, list: keyof System, targets: string) => {
      for (const [, r] of this.of(type)) {
        for (const s of r.Properties.PolicyDocument.Statement) {
          // One entry per target and service: one policy for two queues equals two policies.
          for (const target of r.Properties[targets]) {
            for (const service of [s.Principal?.Service ?? []].flat()) {
              const grant = stable({
                target: this.value(target),
                service,
                actions: [s.Action].flat().map((a: string) => a.toLowerCase()),
                conditions: Object.entries<Record<string, unknown>>(s.Condition ?? {}).flatMap(([, c]) => Object.keys(c)).sort(),
              });
              const seen = sys[list] as string[];
              if (!seen.includes(grant)) seen.push(grant);
            }
          }
        }
      }
    };
    const stage = (name: unknown, throttle: any, logs: any) => ({
      stage: this.value(name),
      rate: Number(this.value(throttle?.ThrottlingRateLimit)),
      burst: Number(this.value(throttle?.ThrottlingBurstLimit)),
      accessLogs: this.value(logs?.DestinationArn),
      format: logs?.Format,
    });
    for (const [, r] of this.of('AWS::Serverless::HttpApi')) {
      sys.api.push(stage(r.Properties.StageName, r.Properties.DefaultRouteSettings, r.Properties.AccessLogSettings));
    }
    for (const [, r] of this.of('AWS::ApiGatewayV2::Stage')) {
      sys.api.push(stage(r.Properties.StageName, r.Properties.DefaultRouteSettings, r.Properties.AccessLogSettings));
    }
    grants('AWS::SNS::TopicPolicy', 'topicGrants', 'Topics');
    grants('AWS::SQS::QueuePolicy', 'queueGrants', 'Queues');
    for (const key of ['rules', 'eventSources', 'asyncInvoke', 'secrets', 'keyGrants', 'topicGrants', 'queueGrants'] as const) sys[key].sort();
    return sys;
  }

  private rule(bus: unknown, pattern: unknown, target: unknown, retry: unknown, deadLetters: unknown): string {
    return stable({ bus: this.value(bus), pattern, target: this.value(target), retry, deadLetters: this.value(deadLetters) });
  }

  /** AWS::Serverless::Function, with Globals and the resources its events stand for. */
  private samFunctions(sys: System) {
    const g: any = this.t.Globals?.Function ?? {};
    for (const [id, r] of this.of('AWS::Serverless::Function')) {
      const p = r.Properties;
      const name = this.value(p.FunctionName);
      const actions = new Set<string>();
      // Policies attached to the role SAM generates (<id>Role) from outside the function.
      for (const [, policy] of this.of('AWS::IAM::Policy')) {
        if (!policy.Properties.Roles.some((x: any) => x.Ref === `${id}Role`)) continue;
        for (const s of policy.Properties.PolicyDocument.Statement) for (const a of [s.Action].flat()) if (DATA_ACTION.test(a)) actions.add(a);
      }
      for (const policy of p.Policies ?? []) {
        if (policy.Statement) {
          for (const s of policy.Statement) for (const a of [s.Action].flat()) if (DATA_ACTION.test(a)) actions.add(a);
        } else {
          for (const [template] of Object.entries(policy)) for (const a of SAM_POLICY_TEMPLATES[template] ?? [`?${template}`]) actions.add(a);
        }
      }
      if (p.EventInvokeConfig?.DestinationConfig?.OnFailure?.Type === 'SQS') actions.add('sqs:SendMessage');
      sys.functions[name] = {
        binary: r.Metadata?.BuildProperties?.Binary,
        runtime: p.Runtime ?? g.Runtime,
        architecture: (p.Architectures ?? g.Architectures)[0],
        memory: p.MemorySize ?? g.MemorySize,
        timeout: p.Timeout ?? g.Timeout,
        tracing: p.Tracing ?? g.Tracing,
        environment: Object.keys({ ...g.Environment?.Variables, ...p.Environment?.Variables }).sort(),
        actions: [...actions].sort(),
      };
      if (p.EventInvokeConfig) {
        const c = p.EventInvokeConfig;
        sys.asyncInvoke.push(stable({ function: name, retries: c.MaximumRetryAttempts, onFailure: this.value(c.DestinationConfig?.OnFailure?.Destination) }));
      }
      for (const e of Object.values<any>(p.Events ?? {})) {
        const ep = e.Properties;
        if (e.Type === 'HttpApi') sys.routes[`${ep.Method.toUpperCase()} ${ep.Path}`] = name;
        if (e.Type === 'ScheduleV2') {
          sys.schedules[this.value(ep.Name)] = {
            expression: this.value(ep.ScheduleExpression),
            target: `${name}.Arn`,
            retry: ep.RetryPolicy,
            deadLetters: this.value(ep.DeadLetterConfig?.Arn),
          };
        }
        if (e.Type === 'EventBridgeRule') sys.rules.push(this.rule(ep.EventBusName, ep.Pattern, `${name}.Arn`, ep.RetryPolicy, ep.DeadLetterConfig?.Arn));
        if (e.Type === 'SQS') {
          sys.eventSources.push(
            stable({
              queue: this.value(ep.Queue),
              function: name,
              batchSize: ep.BatchSize ?? 10,
              window: ep.MaximumBatchingWindowInSeconds ?? 0,
              responseTypes: ep.FunctionResponseTypes ?? [],
              maxConcurrency: ep.ScalingConfig?.MaximumConcurrency ?? null,
            }),
          );
        }
      }
    }
  }

  /** AWS::Lambda::Function, with the data actions of the policies on its role. */
  private lambdaFunctions(sys: System) {
    for (const [, r] of this.of('AWS::Lambda::Function')) {
      const p = r.Properties;
      const role = p.Role['Fn::GetAtt'][0];
      const actions = new Set<string>();
      for (const [, policy] of this.of('AWS::IAM::Policy')) {
        if (!policy.Properties.Roles.some((x: any) => x.Ref === role)) continue;
        for (const s of policy.Properties.PolicyDocument.Statement) for (const a of [s.Action].flat()) if (DATA_ACTION.test(a)) actions.add(a);
      }
      sys.functions[this.value(p.FunctionName)] = {
        binary: r.Metadata?.['cobro:binary'],
        runtime: p.Runtime,
        architecture: p.Architectures?.[0] ?? 'x86_64',
        memory: p.MemorySize,
        timeout: p.Timeout,
        tracing: p.TracingConfig?.Mode,
        environment: Object.keys(p.Environment?.Variables ?? {}).sort(),
        actions: [...actions].sort(),
      };
    }
  }
}
