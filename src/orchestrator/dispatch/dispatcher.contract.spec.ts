import { describeDispatcherContract } from './dispatcher.contract';
import { InProcessDispatcher } from './in-process-dispatcher';

describeDispatcherContract(
  'InProcessDispatcher',
  ({ capacity, policy }) => new InProcessDispatcher({ capacity, policy }),
);
