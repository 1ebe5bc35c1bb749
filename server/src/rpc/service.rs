//! The `bank.v1.Bank` gRPC service: each handler converts the request, checks
//! that the caller owns the account (with `--auth-tokens`), calls [`Ops`] (or
//! the ledger directly for reads) and converts the answer. Errors become
//! statuses through `From<LedgerError>`/`From<AuthError> for Status`, nowhere
//! else. Every call is reported to [`Telemetry`] (access log and metrics).

use std::sync::Arc;

use bank::v1 as pb;
use bank::v1::bank_server::Bank;
use tonic::{Request, Response, Status, Streaming};

use crate::admission::auth::{Authenticated, Session};
use crate::admission::ops::Ops;
use crate::observe::telemetry::{Method, Telemetry};
use crate::rpc::call::Call;
use crate::rpc::owner::check_owner;
use crate::rpc::stream::{withdraw_stream, ResultStream};

/// The service handed to tonic; cheap to clone.
#[derive(Debug, Clone)]
pub struct BankService {
    ops: Arc<Ops>,
    stream_buffer: usize,
    telemetry: Telemetry,
}

impl BankService {
    /// A service over `ops`; each stream buffers up to `stream_buffer` answers.
    pub fn new(ops: Arc<Ops>, stream_buffer: usize) -> Self {
        BankService {
            ops,
            stream_buffer,
            telemetry: Telemetry::default(),
        }
    }

    /// The same service, reporting its calls to `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Refuses an unauthenticated call, or one on `account_id` by a principal
    /// that did not open it (nothing to check without tokens). Runs before
    /// anything is recorded.
    async fn check_owner(&self, caller: &Caller, account_id: &str) -> Result<(), Status> {
        let caller = caller.as_ref().map_err(Clone::clone)?;
        check_owner(&self.ops, caller.as_ref().map(Session::principal), account_id).await
    }
}

/// Who calls: `Ok(None)` without tokens, else the session of the token,
/// or `UNAUTHENTICATED` (answered by the handler, so that it is counted and logged).
type Caller = Result<Option<Session>, Status>;

/// The caller as the token check found it.
fn principal<T>(request: &Request<T>) -> Caller {
    match request.extensions().get::<Authenticated>() {
        None => Ok(None),
        Some(Authenticated(Ok(session))) => Ok(Some(session.clone())),
        Some(Authenticated(Err(e))) => Err(e.clone().into()),
    }
}

#[tonic::async_trait]
impl Bank for BankService {
    async fn open_account(
        &self,
        request: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let caller = principal(&request);
        let r = request.into_inner();
        let observed = self.telemetry.start(Method::OpenAccount, &r.account_id, "");
        let result = async {
            let owner = caller?.map(|s| s.principal().0.to_string());
            let open = self.ops.open(r.account_id.clone(), r.initial_balance, owner);
            open.await.map_err(Status::from)
        }
        .await;
        observed.finish_call(&result);
        Ok(Response::new(result?.into()))
    }

    async fn get_balance(
        &self,
        request: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let caller = principal(&request);
        let account_id = &request.get_ref().account_id;
        let observed = self.telemetry.start(Method::GetBalance, account_id, "");
        let result = async {
            self.check_owner(&caller, account_id).await?;
            self.ops.balance(account_id).await.map_err(Status::from)
        }
        .await;
        observed.finish_call(&result);
        Ok(Response::new(result?.into()))
    }

    async fn deposit(
        &self,
        request: Request<pb::DepositRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        let (call, caller) = (Call::from_metadata(request.metadata()), principal(&request));
        let r = request.into_inner();
        let observed = self
            .telemetry
            .start(Method::Deposit, &r.account_id, &r.request_id);
        let result = async {
            self.check_owner(&caller, &r.account_id).await?;
            self.ops.deposit(r.into(), &call).await.map_err(Status::from)
        }
        .await;
        observed.finish_op(&result);
        Ok(Response::new(self.ops.answers().wire(result?)))
    }

    async fn withdraw(
        &self,
        request: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        let (call, caller) = (Call::from_metadata(request.metadata()), principal(&request));
        let r = request.into_inner();
        let observed = self
            .telemetry
            .start(Method::Withdraw, &r.account_id, &r.request_id);
        let result = async {
            self.check_owner(&caller, &r.account_id).await?;
            self.ops.withdraw(r.into(), &call).await.map_err(Status::from)
        }
        .await;
        observed.finish_op(&result);
        Ok(Response::new(self.ops.answers().wire(result?)))
    }

    type WithdrawStreamStream = ResultStream;

    async fn withdraw_stream(
        &self,
        request: Request<Streaming<pb::WithdrawRequest>>,
    ) -> Result<Response<ResultStream>, Status> {
        // A stream is not counted as in flight: each request on it is.
        drop(self.ops.enter()?);
        let (call, caller) = (Call::from_metadata(request.metadata()), principal(&request));
        let caller = caller.inspect_err(|status| {
            let refused: Result<(), Status> = Err(status.clone());
            self.telemetry
                .start(Method::WithdrawStream, "", "")
                .finish_call(&refused);
        })?;
        let stream = withdraw_stream(
            Arc::clone(&self.ops),
            call,
            caller,
            request.into_inner(),
            self.stream_buffer,
            self.telemetry.clone(),
        );
        Ok(Response::new(stream))
    }

    async fn transfer(
        &self,
        request: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        let (call, caller) = (Call::from_metadata(request.metadata()), principal(&request));
        let r = request.into_inner();
        let observed = self
            .telemetry
            .start(Method::Transfer, &r.from_account_id, &r.request_id);
        // The source must be the caller's; the target may be anyone's.
        let result = async {
            self.check_owner(&caller, &r.from_account_id).await?;
            self.ops.transfer(r.into(), &call).await.map_err(Status::from)
        }
        .await;
        observed.finish_op(&result);
        Ok(Response::new(self.ops.answers().wire(result?)))
    }

    async fn get_operation(
        &self,
        request: Request<pb::GetOperationRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        let caller = principal(&request);
        let r = request.into_inner();
        let observed = self
            .telemetry
            .start(Method::GetOperation, &r.account_id, &r.request_id);
        let result = async {
            self.check_owner(&caller, &r.account_id).await?;
            self.ops
                .operation(r.account_id, r.request_id)
                .await
                .map_err(Status::from)
        }
        .await;
        observed.finish_call(&result);
        Ok(Response::new(result?.into()))
    }
}
