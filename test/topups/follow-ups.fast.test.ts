import { lowBalanceCrossingKey, topupFollowUpKey, type FollowUp } from '../../credits/follow-ups';
import { emailKeys } from '../../email/templates';
import { followUpWorkflow } from '../../temporal/follow-ups';
import {
  LOW_BALANCE_NOTICE_WORKFLOW_TYPE,
  TOPUP_WORKFLOW_TYPE,
  topupWorkflowId,
} from '../../workflows/topups/contract';

const notice: FollowUp = {
  kind: 'low_balance_notice',
  key: lowBalanceCrossingKey('acct:7', 3),
  accountId: 'acct:7',
  facts: { notice: 3, available: 40, threshold: 50, autoTopup: false },
};
const topup: FollowUp = {
  kind: 'topup',
  key: topupFollowUpKey('topup_12'),
  accountId: 'acct:7',
  facts: { topupId: 'topup_12' },
};

describe('the workflow of a balance follow-up', () => {
  it('when a low-balance notice is to be sent, then its workflow is keyed by the email it queues, with the facts to render', () => {
    expect(followUpWorkflow(notice)).toEqual({
      workflowType: LOW_BALANCE_NOTICE_WORKFLOW_TYPE,
      workflowId: emailKeys.lowBalance('acct:7', 3),
      input: { accountId: 'acct:7', emailKey: emailKeys.lowBalance('acct:7', 3), notice: notice.facts },
    });
  });

  it('when a top-up was opened, then its workflow is the top-up’s', () => {
    expect(followUpWorkflow(topup)).toEqual({
      workflowType: TOPUP_WORKFLOW_TYPE,
      workflowId: topupWorkflowId('topup_12'),
      input: { topupId: 'topup_12', accountId: 'acct:7' },
    });
  });

  it('when a follow-up is keyed, then its key is its workflow’s ID (rows of the previous release were keyed so)', () => {
    for (const followUp of [notice, topup]) expect(followUp.key).toBe(followUpWorkflow(followUp).workflowId);
  });
});
