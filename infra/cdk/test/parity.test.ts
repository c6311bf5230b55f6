// The CDK app and template.yaml deploy the same system: same functions (binaries, runtime,
// memory, timeouts, environment, data permissions), table, queues and dead-letter queues, bus,
// schedule, rules, alarms, log groups, routes, event sources, secret, topics, bucket and the
// services allowed to use the topics' key.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { CobroStack, BINARY_METADATA } from '../lib/cobro-stack';
import { DEFAULTS } from '../lib/settings';
import { readCfnYaml } from './cfn-yaml';
import { Describer, System } from './describe';

const ROOT = path.resolve(__dirname, '../../../..');
const sam = readCfnYaml(path.join(ROOT, 'template.yaml'));

function synth(settings = DEFAULTS): Template {
  // No bundling: the test needs the template, not the Rust binaries.
  const app = new App({ postCliContext: { 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(new CobroStack(app, 'cobro-test', { settings }));
}

const cdk = synth();
const fromSam = new Describer(sam).describe();
const fromCdk = new Describer(cdk.toJSON() as never).describe();

test('template.yaml describes the whole system (the comparison has something to compare)', () => {
  assert.equal(Object.keys(fromSam.functions).length, 9);
  assert.ok(Object.keys(fromSam.alarms).length >= 20, 'alarms');
  assert.ok(Object.keys(fromSam.queues).length >= 7, 'queues');
  assert.equal(fromSam.schedules['cobro-dev-reminders-tick'] !== undefined, true);
  for (const [name, f] of Object.entries(fromSam.functions) as [string, any][]) {
    assert.match(f.binary, /^cobro-/, `${name} names its binary`);
    assert.ok(f.actions.length > 0, `${name} has data permissions`);
  }
});

const sections: (keyof System)[] = [
  'functions', 'table', 'queues', 'buses', 'schedules', 'rules', 'alarms', 'logGroups', 'routes', 'eventSources', 'asyncInvoke', 'secrets', 'topics', 'buckets', 'keyGrants', 'topicGrants', 'queueGrants', 'api',
];
for (const section of sections) {
  test(`the CDK app declares the same ${section} as template.yaml`, () => {
    assert.deepEqual(fromCdk[section], fromSam[section]);
  });
}

test('a difference is caught: the comparison is not blind', () => {
  const changed = structuredClone(sam);
  changed.Resources.SenderFunction.Properties.Events.Outbound.Properties.BatchSize = 10;
  changed.Resources.OutboundDeadLetterAlarm.Properties.Threshold = 2;
  changed.Resources.InboundFunction.Properties.Policies[0].Statement[0].Action.push('dynamodb:Scan');
  const d = new Describer(changed).describe();
  assert.notDeepEqual(d.eventSources, fromCdk.eventSources);
  assert.notDeepEqual(d.alarms, fromCdk.alarms);
  assert.notDeepEqual(d.functions, fromCdk.functions);
});

test('every function is a RustFunction on arm64 with its binary recorded', () => {
  cdk.resourceCountIs('AWS::Lambda::Function', 9);
  cdk.allResourcesProperties('AWS::Lambda::Function', { Architectures: ['arm64'], Runtime: 'provided.al2023', Handler: 'bootstrap' });
  const binaries = Object.values(cdk.findResources('AWS::Lambda::Function')).map((r: any) => r.Metadata[BINARY_METADATA]);
  assert.deepEqual(binaries.sort(), Object.values(sam.Resources).filter((r) => r.Type === 'AWS::Serverless::Function').map((r) => r.Metadata.BuildProperties.Binary).sort());
});

test('secrets are readable by the webhook, inbound and the sender only', () => {
  const readers = Object.entries(fromCdk.functions)
    .filter(([, f]: [string, any]) => f.actions.includes('secretsmanager:GetSecretValue'))
    .map(([name]) => name)
    .sort();
  assert.deepEqual(readers, ['cobro-dev-inbound', 'cobro-dev-sender', 'cobro-dev-webhook']);
  cdk.hasResourceProperties('AWS::IAM::Policy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'secretsmanager:GetSecretValue', Resource: Match.anyValue() })]) },
  });
});

test('the alarm e-mail and Stripe rule follow the settings', () => {
  cdk.resourceCountIs('AWS::SNS::Subscription', 1); // inbound SMS to its queue only
  const withAll = synth({ ...DEFAULTS, alarmEmail: 'ops@example.com', stripeEventBusName: 'aws.partner/stripe.com/ed_test' });
  withAll.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  withAll.hasResourceProperties('AWS::Events::Rule', { EventBusName: 'aws.partner/stripe.com/ed_test' });
});

test('the table and the bucket outlive the stack', () => {
  cdk.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  cdk.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
});
