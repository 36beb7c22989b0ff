//! One module per group of verbs; each turns parsed flags into API calls and prints the result
//! as docker does.

mod archive;
mod build;
mod container;
mod exec;
mod image;
mod inspect;
mod login;
mod network;
mod ps;
mod run;
mod stats;
mod system;
mod volume;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, Cmd, ContainerCmd, ImageCmd, NetworkCmd, SystemCmd, VolumeCmd};
use crate::client::Client;

pub async fn dispatch(c: Client, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Run(a) => run::run(&c, a, false).await,
        Cmd::Create(a) => run::run(&c, a, true).await,
        Cmd::Start(a) => run::start(&c, a).await,
        Cmd::Attach(a) => run::attach(&c, a).await,
        Cmd::Exec(a) => exec::exec(&c, a).await,
        Cmd::Stop(a) => container::stop(&c, a, false).await,
        Cmd::Restart(a) => container::stop(&c, a, true).await,
        Cmd::Kill(a) => container::kill(&c, a).await,
        Cmd::Rm(a) => container::rm(&c, a).await,
        Cmd::Ps(a) => ps::ps(&c, a).await,
        Cmd::Logs(a) => container::logs(&c, a).await,
        Cmd::Inspect(a) => inspect::inspect(&c, a.names, a.format, a.typ, a.size).await,
        Cmd::Wait(a) => container::wait(&c, a.containers).await,
        Cmd::Pause(a) => container::simple(&c, a.containers, "pause").await,
        Cmd::Unpause(a) => container::simple(&c, a.containers, "unpause").await,
        Cmd::Rename {
            container,
            new_name,
        } => container::rename(&c, &container, &new_name).await,
        Cmd::Top { container, ps_args } => container::top(&c, &container, &ps_args).await,
        Cmd::Port {
            container,
            private_port,
        } => container::port(&c, &container, private_port).await,
        Cmd::Update(a) => container::update(&c, a).await,
        Cmd::Stats(a) => stats::stats(&c, a).await,
        Cmd::Cp(a) => archive::cp(&c, a).await,
        Cmd::Diff { container } => container::diff(&c, &container).await,
        Cmd::Export { output, container } => archive::export(&c, &container, output).await,
        Cmd::Commit(a) => container::commit(&c, a).await,
        Cmd::Images(a) => image::images(&c, a).await,
        Cmd::Pull(a) => image::pull(&c, a).await,
        Cmd::Push(a) => image::push(&c, a).await,
        Cmd::Rmi(a) => image::rmi(&c, a).await,
        Cmd::Tag { source, target } => image::tag(&c, &source, &target).await,
        Cmd::Save(a) => archive::save(&c, a).await,
        Cmd::Load(a) => archive::load(&c, a).await,
        Cmd::Import(a) => archive::import(&c, a).await,
        Cmd::History(a) => image::history(&c, a).await,
        Cmd::Build(a) => build::build(&c, a).await,
        Cmd::Login(a) => login::login(&c, a).await,
        Cmd::Logout { server } => login::logout(server),
        Cmd::Image(i) => match i {
            ImageCmd::Ls(a) => image::images(&c, a).await,
            ImageCmd::Pull(a) => image::pull(&c, a).await,
            ImageCmd::Push(a) => image::push(&c, a).await,
            ImageCmd::Rm(a) => image::rmi(&c, a).await,
            ImageCmd::Tag { source, target } => image::tag(&c, &source, &target).await,
            ImageCmd::Save(a) => archive::save(&c, a).await,
            ImageCmd::Load(a) => archive::load(&c, a).await,
            ImageCmd::Import(a) => archive::import(&c, a).await,
            ImageCmd::History(a) => image::history(&c, a).await,
            ImageCmd::Build(a) => build::build(&c, a).await,
            ImageCmd::Inspect(a) => {
                inspect::inspect(&c, a.names, a.format, Some("image".into()), false).await
            }
            ImageCmd::Prune(a) => image::prune(&c, a).await,
        },
        Cmd::Container(x) => match x {
            ContainerCmd::Ls(a) => ps::ps(&c, a).await,
            ContainerCmd::Run(a) => run::run(&c, a, false).await,
            ContainerCmd::Create(a) => run::run(&c, a, true).await,
            ContainerCmd::Start(a) => run::start(&c, a).await,
            ContainerCmd::Stop(a) => container::stop(&c, a, false).await,
            ContainerCmd::Restart(a) => container::stop(&c, a, true).await,
            ContainerCmd::Kill(a) => container::kill(&c, a).await,
            ContainerCmd::Rm(a) => container::rm(&c, a).await,
            ContainerCmd::Logs(a) => container::logs(&c, a).await,
            ContainerCmd::Exec(a) => exec::exec(&c, a).await,
            ContainerCmd::Inspect(a) => {
                inspect::inspect(&c, a.names, a.format, Some("container".into()), a.size).await
            }
            ContainerCmd::Prune(a) => container::prune(&c, a).await,
            ContainerCmd::Attach(a) => run::attach(&c, a).await,
            ContainerCmd::Wait(a) => container::wait(&c, a.containers).await,
            ContainerCmd::Pause(a) => container::simple(&c, a.containers, "pause").await,
            ContainerCmd::Unpause(a) => container::simple(&c, a.containers, "unpause").await,
            ContainerCmd::Rename {
                container,
                new_name,
            } => container::rename(&c, &container, &new_name).await,
            ContainerCmd::Top { container, ps_args } => {
                container::top(&c, &container, &ps_args).await
            }
            ContainerCmd::Port {
                container,
                private_port,
            } => container::port(&c, &container, private_port).await,
            ContainerCmd::Update(a) => container::update(&c, a).await,
            ContainerCmd::Stats(a) => stats::stats(&c, a).await,
            ContainerCmd::Cp(a) => archive::cp(&c, a).await,
            ContainerCmd::Diff { container } => container::diff(&c, &container).await,
            ContainerCmd::Export { output, container } => {
                archive::export(&c, &container, output).await
            }
            ContainerCmd::Commit(a) => container::commit(&c, a).await,
        },
        Cmd::Volume(v) => match v {
            VolumeCmd::Create(a) => volume::create(&c, a).await,
            VolumeCmd::Ls(a) => volume::ls(&c, a).await,
            VolumeCmd::Inspect(a) => {
                inspect::inspect(&c, a.names, a.format, Some("volume".into()), false).await
            }
            VolumeCmd::Rm { force, volumes } => volume::rm(&c, force, volumes).await,
            VolumeCmd::Prune(a) => volume::prune(&c, a).await,
        },
        Cmd::Network(n) => match n {
            NetworkCmd::Create(a) => network::create(&c, a).await,
            NetworkCmd::Ls(a) => network::ls(&c, a).await,
            NetworkCmd::Inspect(a) => {
                inspect::inspect(&c, a.names, a.format, Some("network".into()), false).await
            }
            NetworkCmd::Rm { force, networks } => network::rm(&c, force, networks).await,
            NetworkCmd::Connect {
                ip,
                ip6,
                alias,
                network,
                container,
            } => network::connect(&c, &network, &container, ip, ip6, alias).await,
            NetworkCmd::Disconnect {
                force,
                network,
                container,
            } => network::disconnect(&c, &network, &container, force).await,
            NetworkCmd::Prune { filter, force } => network::prune(&c, filter, force).await,
        },
        Cmd::System(s) => match s {
            SystemCmd::Df(a) => system::df(&c, a).await,
            SystemCmd::Prune(a) => system::prune(&c, a).await,
            SystemCmd::Info(a) => system::info(&c, a.format).await,
            SystemCmd::Events(a) => system::events(&c, a).await,
        },
        Cmd::Events(a) => system::events(&c, a).await,
        Cmd::Version(a) => system::version(&c, a.format).await,
        Cmd::Info(a) => system::info(&c, a.format).await,
        Cmd::Completion { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "berth", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Asks "Are you sure you want to continue? [y/N]" unless forced.
pub fn confirm(warning: &str, force: bool) -> bool {
    if force {
        return true;
    }
    use std::io::{BufRead, Write};
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Runs `f` for each name, printing the name on success and docker's message on failure; the
/// command fails (exit 1) if any did.
pub async fn for_each<F, Fut>(names: &[String], mut f: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::client::ClientError>>,
{
    let mut failed = false;
    for n in names {
        match f(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(crate::Exit::code(1).into());
    }
    Ok(())
}
